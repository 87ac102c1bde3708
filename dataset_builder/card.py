"""Dataset card text for a prepared dataset (for ``push_to_hub``)."""

from __future__ import annotations

from typing import Union

import datasets

from .stats import preparation_stats

__all__ = ["dataset_card_text"]


def _table(header: tuple[str, str], rows: dict) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in rows.items()] or ["| (none) | 0 |"]
    return "\n".join(lines)


def dataset_card_text(dataset: Union[datasets.DatasetDict, datasets.Dataset], *, title: str,
                      source: str, terms: str) -> str:
    """Markdown body of a dataset card: source and terms, splits, features, options and
    every drop count recorded during preparation.

    Args:
        dataset: A dataset returned by one of the ``load_*`` helpers.
        title: Card title.
        source: Where the data comes from (collection, release, how it was obtained).
        terms: The collection's terms of use / licence, stated by the publisher.

    Returns:
        Markdown text (without YAML front matter) for ``huggingface_hub.DatasetCard.text``.
    """
    stats = preparation_stats(dataset)
    first = next(iter(dataset.values())) if isinstance(dataset, datasets.DatasetDict) else dataset
    features = {name: type(feature).__name__ for name, feature in first.features.items()}
    return "\n\n".join([
        f"# {title}",
        f"**Source:** {source}\n\n**Terms of use:** {terms}",
        f"Prepared with the project's `dataset_builder` from the `{stats['layout']}` layout: "
        f"{stats['studies_seen']} studies read, {stats['studies_kept']} kept.",
        "## Splits\n\n" + _table(("split", "examples"), stats["splits"]),
        "## Features\n\n" + _table(("feature", "type"), features),
        "## Preparation options\n\n" + _table(("option", "value"), stats.get("options", {})),
        "## Studies left out (per reason)\n\n" + _table(("reason", "studies"), stats["dropped"]),
        "## Studies kept with an input missing\n\n" + _table(("reason", "studies"), stats["degraded"]),
        "## Image files\n\n" + _table(("count", "files"), stats["images"]),
    ]) + "\n"
