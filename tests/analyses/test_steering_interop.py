"""Export stored vectors as control-vector GGUF / steering-vectors / npy files and import them back."""

from __future__ import annotations

import numpy as np
import pytest

import actstore
from actstore import ModelInfo
from actstore.errors import InputError
from analyses.recording import Recorder, record
from analyses.steering.interop import export_vectors, import_vectors, read_vectors
from analyses.steering.sources import select_vectors

gguf = pytest.importorskip("gguf")
D = 24


@pytest.fixture()
def store(tmp_path):
    path = tmp_path / "store"
    with actstore.open(path, read_only=False, create=True) as st:
        st.set_model(ModelInfo(name="tiny", dtype="float32", n_layers=4, d_model=D, d_mlp=40, family="llama"))
    rng = np.random.default_rng(0)
    rec = Recorder()
    for layer in range(4):
        rec.add_vector(rng.standard_normal(D), name=f"tradition/shared/resid_post.{layer}", value="tradition",
                       condition=None, component="shared", site="resid_post", layer=layer, pool="mean_response")
    with actstore.open(path) as st:
        record(st, "decompose", {}, rec)
    return path


def _vecs(path, where):
    with actstore.open(path) as st:
        return select_vectors(st, where)


@pytest.mark.parametrize("fmt, suffix", [("gguf", ".gguf"), ("repeng", ".gguf"), ("steering-vectors", ".pt"), ("npy", ".npy")])
def test_export_then_import_round_trips_bit_for_bit(store, tmp_path, fmt, suffix):
    vs = _vecs(store, "layer >= 1" if fmt != "npy" else "layer = 2")
    out = export_vectors(vs, tmp_path / f"v{suffix}", fmt, model_hint="llama")
    with actstore.open(store) as st:
        _, ids = import_vectors(st, out, layer=2 if fmt == "npy" else None, name="back")
    back = _vecs(store, f"vector_id IN ({','.join(map(str, ids))})")
    assert [b.layer for b in back] == [v.layer for v in vs]
    for a, b in zip(vs, back):
        assert np.array_equal(a.vec, b.vec) and b.kind == "imported"


def test_gguf_is_a_llama_cpp_control_vector(store, tmp_path):
    vs = _vecs(store, "layer IN (1, 3)")
    path = export_vectors(vs, tmp_path / "cv.gguf", "gguf", model_hint="llama", scale=2.0)
    r = gguf.GGUFReader(str(path))

    def field(name):
        return bytes(r.get_field(name).parts[-1]).decode()

    assert field("general.architecture") == "controlvector" and field("controlvector.model_hint") == "llama"
    assert int(r.get_field("controlvector.layer_count").parts[-1][0]) == 2
    # What repeng's import_gguf and llama.cpp read: direction.<block index> float32 tensors of d_model.
    tensors = {t.name: np.asarray(t.data) for t in r.tensors}
    assert sorted(tensors) == ["direction.1", "direction.3"]
    np.testing.assert_array_equal(tensors["direction.3"], 2.0 * vs[1].vec)
    assert tensors["direction.1"].dtype == np.float32 and tensors["direction.1"].shape == (D,)


def test_steering_vectors_file_has_the_libraries_fields(store, tmp_path):
    torch = pytest.importorskip("torch")
    vs = _vecs(store, "layer IN (0, 2)")
    obj = torch.load(export_vectors(vs, tmp_path / "sv.pt", "steering-vectors"), weights_only=True)
    assert set(obj) == {"layer_activations", "layer_type"} and obj["layer_type"] == "decoder_block"
    assert sorted(obj["layer_activations"]) == [0, 2]
    assert torch.equal(obj["layer_activations"][2], torch.from_numpy(vs[1].vec))


def test_refusals(store, tmp_path):
    with pytest.raises(InputError, match="cannot steer layer 0"):
        export_vectors(_vecs(store, "layer = 0"), tmp_path / "x.gguf", "gguf")
    with pytest.raises(InputError, match="two vectors at layer"):
        export_vectors(_vecs(store, "TRUE") * 2, tmp_path / "x.gguf", "repeng")
    np.save(tmp_path / "wide.npy", np.ones(D + 1, np.float32))
    with actstore.open(store) as st:
        with pytest.raises(InputError, match="width 25"):
            import_vectors(st, tmp_path / "wide.npy", layer=1)
        with pytest.raises(InputError, match="pass --layer"):
            import_vectors(st, tmp_path / "wide.npy")
        with pytest.raises(InputError, match="not found"):
            read_vectors(tmp_path / "nope.gguf")


def test_cli_export_and_import(store, tmp_path):
    from click.testing import CliRunner

    from actstore.cli import main

    out = tmp_path / "cv.gguf"
    r = CliRunner().invoke(main, ["steer", "export", str(store), "--vectors", "component = 'shared' AND layer > 0",
                                  "--format", "gguf", "--out", str(out)], obj={})
    assert r.exit_code == 0 and "layers 1, 2, 3" in r.output, r.output
    r = CliRunner().invoke(main, ["steer", "import", str(store), str(out), "--layers", "2-3"], obj={})
    assert r.exit_code == 0 and "imported 2 vector(s)" in r.output, r.output
    r = CliRunner().invoke(main, ["steer", "export", str(store), "--vectors", "1", "--format", "gguf",
                                  "--out", str(out)], obj={})
    assert r.exit_code == 1 and r.output.strip().startswith("error: llama.cpp cannot steer layer 0")
