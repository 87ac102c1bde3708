"""Data files of `xray_report.evaluation`: the CheXpert labeler's published phrase lists (`chexpert_phrases.json`)."""
