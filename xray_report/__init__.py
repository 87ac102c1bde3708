"""The chest X-ray report generator's application packages, on top of `modeling`, `processing` and `dataset_builder`.

* `xray_report.evaluation`: NLG metrics (default and R2Gen protocols), trivial baselines, the CheXpert labeler,
  clinical-efficacy scores, prior-comparison flags, the Findings / Impression splitter.
* `xray_report.training`: training on `Seq2SeqTrainer` (`train_hf.py`).
* `xray_report.inference`: the batch CLI (`xray-report`), structured output, grounding heatmaps, precision recipes.
* `xray_report.publishing`: the upload folder and model card of `push_to_hub.py`.
* `xray_report.demo`: the Gradio dashboard.
* `xray_report.synthetic`: synthetic studies whose findings are set by the images (the first run, the tests).

Research use only: this is a research tool, not a medical device.
"""
