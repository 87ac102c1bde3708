"""The project's lab: benchmarks, the semi-real benchmark and its oracles, labeler validation studies, mutation testing.

Nothing here is installed with the product (`pip install` puts `modeling`, `processing`, `dataset_builder` and
`xray_report` on a user's machine); this code imports those packages as any user would. Run it from the repository
root, e.g. `python -m research.bench.bench_inference`; see research/README.md.
"""
