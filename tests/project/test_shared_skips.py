"""A test that needs ../shared may skip only where ../shared is absent; where it exists, such a skip fails."""

from __future__ import annotations

from pathlib import Path

from conftest import SHARED, hidden_shared_failure


def test_a_skip_blaming_shared_data_fails_when_the_folder_exists(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    reason = f"{shared / 'data' / 'iu_xray' / 'x.csv'} is absent: this test needs the shared data folder."
    assert hidden_shared_failure(reason, shared) is None  # no ../shared: the skip stands
    shared.mkdir()
    assert "must run, not skip" in hidden_shared_failure(reason, shared)
    assert hidden_shared_failure("METEOR needs java, absent on this machine", shared) is None


def test_the_shared_data_markers_name_the_shared_path() -> None:
    from dataset_fixtures import requires_shared

    marker = requires_shared("no-such-file.csv")
    assert str(SHARED) in marker.kwargs["reason"]  # so the hook above recognises the skip
