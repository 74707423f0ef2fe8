"""The bundle copied out of a checkout has the model-zoo layout only, without the links at the old paths."""

from __future__ import annotations

from glsmonai.resources import bundle_dir, copy_bundle


def test_bundle_copy_leaves_out_the_links_at_the_configs_old_paths(tmp_path):
    links = [p.name for p in bundle_dir().iterdir() if p.is_symlink()]
    assert "train.json" in links  # bundles/gls/train.json -> configs/train.json in a checkout
    dest = copy_bundle(tmp_path / "gls")
    assert (dest / "configs" / "train.json").is_file() and (dest / "models").is_dir()
    assert not any((dest / name).exists() for name in links)
    assert not any(p.is_symlink() for p in dest.rglob("*"))
