"""int4 embedding tables (``Int8Dynamic(embedding_bits=4)``): written for ONNX as
GatherBlockQuantized, smaller than the int8 tables, close to them in output; refused in one
line by the formats that cannot write them."""

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import pocketbert
from pocketbert.cli import main
from pocketbert.converters.quantization import Int8Dynamic, describe
from pocketbert.core.errors import UserError


def test_int4_tables_replace_the_embedding_gathers(tiny_models, tmp_path):
    model = tiny_models["bert"]
    pocketbert.export(model, tmp_path / "i8", format="onnx", precision="int8-dynamic", quiet=True)
    pocketbert.export(
        model, tmp_path / "i4", format="onnx", precision=Int8Dynamic(embedding_bits=4), quiet=True
    )
    graph = onnx.load(str(tmp_path / "i4" / "model.onnx"))
    blocks = [n for n in graph.graph.node if n.op_type == "GatherBlockQuantized"]
    assert len(blocks) == 2  # word and position tables (the token-type row is folded away)
    tables = {i.name: i for i in graph.graph.initializer}
    assert all(tables[n.input[0]].data_type == onnx.TensorProto.INT4 for n in blocks)
    # the default opset stays the export's: GatherBlockQuantized is a com.microsoft op
    assert {o.domain: o.version for o in graph.opset_import}[""] == 17
    size = {p: (tmp_path / p / "model.onnx").stat().st_size for p in ("i8", "i4")}
    word = max((tables[n.input[0]] for n in blocks), key=lambda t: t.dims[0])
    saved = word.dims[0] * word.dims[1] / 2  # half a byte per entry, less the scales
    assert size["i8"] - size["i4"] > 0.7 * saved

    manifest = json.loads((tmp_path / "i4" / "manifest.json").read_text())
    assert manifest["quantization"]["embedding_bits"] == 4

    feeds = {
        "input_ids": np.array([[2, 57, 130, 311, 3]], dtype=np.int64),
        "attention_mask": np.ones((1, 5), dtype=np.int64),
    }
    out = {p: pocketbert.load(tmp_path / p).session.run(feeds)[0] for p in ("i8", "i4")}
    assert np.allclose(out["i8"], out["i4"], atol=0.5)  # the same model, coarser tables
    assert not np.array_equal(out["i8"], out["i4"])


def test_int4_table_values_are_blocks_of_the_fp32_table(tiny_models, tmp_path):
    from pocketbert.converters.export_onnx import INT4_BLOCK

    model = tiny_models["bert"]
    pocketbert.export(model, tmp_path / "f", format="onnx", precision="fp32", quiet=True)
    pocketbert.export(
        model, tmp_path / "i4", format="onnx", precision=Int8Dynamic(embedding_bits=4), quiet=True
    )
    fp32 = {
        i.name: numpy_helper.to_array(i)
        for i in onnx.load(str(tmp_path / "f" / "model.onnx")).graph.initializer
    }
    q = onnx.load(str(tmp_path / "i4" / "model.onnx")).graph
    init = {i.name: i for i in q.initializer}
    node = next(n for n in q.node if n.op_type == "GatherBlockQuantized")
    scales = numpy_helper.to_array(init[node.input[2]])
    q4 = numpy_helper.to_array(init[node.input[0]]).astype(np.float32)  # -8..7, unpacked
    table = fp32[node.input[0].removesuffix("_Q4")]
    rows, width = table.shape
    assert q4.shape == table.shape and q4.min() >= -8 and q4.max() <= 7
    assert scales.shape == (rows, -(-width // INT4_BLOCK))
    step = np.repeat(scales, INT4_BLOCK, axis=1)[:, :width]
    # each entry is its block's scale times an int4 (the scale's sign puts the block's
    # largest |entry| at -8): off by half a step, by at most one where +8 clips to 7
    error = np.abs(q4 * step - table)
    assert np.all(error <= np.abs(step) + 1e-6)
    assert np.all(error[q4 < 7] <= np.abs(step[q4 < 7]) / 2 + 1e-6)


def test_formats_that_cannot_write_int4_tables_refuse_in_one_line(tiny_models, tmp_path, capsys):
    config = Int8Dynamic(embedding_bits=4)
    assert describe(config) == "int8-dynamic (embedding_bits=4)"
    with pytest.raises(UserError, match="format tflite cannot write int8-dynamic"):
        pocketbert.export(tiny_models["bert"], tmp_path / "t", format="tflite", precision=config)
    assert not (tmp_path / "t").exists()
    code = main(
        ["export", str(tiny_models["bert"]), "-o", str(tmp_path / "x"), "--embedding-bits", "4"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "add --precision int8-dynamic" in err[-1]
    with pytest.raises(UserError, match="embedding_bits is 2"):
        Int8Dynamic(embedding_bits=2)
