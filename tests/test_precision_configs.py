"""Precisions are config objects in one table; exporters and the gate dispatch on their type."""

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass

import onnx
import pytest

import pocketbert
from pocketbert.converters import EXPORTERS, methods
from pocketbert.converters.quantization import (
    PRECISIONS,
    Fp32,
    Int8Dynamic,
    Int8Static,
    config_dict,
    precision_config,
)
from pocketbert.converters.registry import ExporterInfo
from pocketbert.core.errors import UserError
from pocketbert.verify import gate


def test_precision_config_gives_the_default_config_when_the_name_is_known():
    assert precision_config("fp32") == Fp32()
    assert precision_config("int8-dynamic") == Int8Dynamic()
    assert precision_config("int8-static") == Int8Static(calibration_samples=128)
    assert list(PRECISIONS) == ["fp32", "int8-dynamic", "int8-static"]


def test_precision_config_lists_the_choices_when_the_name_is_unknown():
    with pytest.raises(UserError) as exc:
        precision_config("int4")
    assert str(exc.value) == (
        "unknown precision 'int4'; choose one of: all, fp32, int8-dynamic, int8-static"
    )


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: Fp32(max_abs_diff=-1.0), "Fp32.max_abs_diff is -1.0"),
        (lambda: Fp32(max_abs_diff=float("nan")), "Fp32.max_abs_diff is nan"),
        (lambda: Int8Dynamic(min_argmax_agreement=1.5), "min_argmax_agreement is 1.5"),
        (lambda: Int8Static(min_mean_cosine="high"), "min_mean_cosine is 'high'"),
        (lambda: Int8Static(calibration_samples=0), "calibration_samples is 0"),
        (lambda: Int8Static(calibration_samples=2.5), "calibration_samples is 2.5"),
        (lambda: Int8Static(dynamic_outliers="yes"), "dynamic_outliers is 'yes'"),
    ],
)
def test_config_refuses_a_bad_field_when_constructed(make, says):
    with pytest.raises(UserError, match=says):
        make()


def test_config_is_frozen_when_constructed():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Int8Static().calibration_samples = 3


def test_gate_reads_its_bound_from_the_config_when_judging_figures():
    # 200 decisive rows, 10 of them differ (95%)
    figures = {
        "max_abs_diff": 5e-4,
        "decisive_agreement": 0.95,
        "decisive_rows": 200,
        "mean_cosine": 0.99,
    }
    assert gate(figures, Fp32(), "classification") == (False, "max_abs_diff <= 0.0001")
    assert gate(figures, Fp32(max_abs_diff=1e-3), "classification") == (
        True,
        "max_abs_diff <= 0.001",
    )
    rule = "decisive_agreement >= 0.98 over decisive rows, 3 rows always allowed"
    assert gate(figures, Int8Static(), "classification") == (False, rule)
    assert gate(figures, Int8Static(min_argmax_agreement=0.9), "classification")[0] is True
    assert gate(figures, Int8Dynamic(), "embedding") == (True, "mean_cosine >= 0.98")
    assert gate(figures, "int8-dynamic", "embedding")[0] is True  # a name means its default


def test_config_modules_import_without_torch_when_the_cli_starts():
    code = (
        "import sys, pocketbert.cli.main, pocketbert.verify, pocketbert.converters.methods;"
        "from pocketbert.converters.quantization import PRECISIONS;"
        "print(sorted(m for m in ('torch', 'onnx', 'transformers') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_exporter_entry_dispatches_on_the_config_type_when_exporting(monkeypatch):
    seen = []

    def handler(model, spec, out):
        seen.append((type(spec.precision), out))
        return out

    info = ExporterInfo(
        "probe", ".probe", "onnxruntime", lambda m, s, o, h: h(m, s, o), {Fp32: handler}
    )

    @dataclass(frozen=True)
    class Spec:
        precision: object

    assert info.export(None, Spec(Fp32()), "x.probe") == "x.probe"
    assert seen == [(Fp32, "x.probe")]
    with pytest.raises(
        UserError, match="format probe does not export 'int8-static'; choose one of: fp32"
    ):
        info.export(None, Spec(Int8Static()), "x.probe")


def _must_not_load(*args, **kwargs):
    raise AssertionError("the model was loaded before the options were checked")


def test_export_refuses_a_precision_its_format_does_not_handle_before_loading(
    monkeypatch, tmp_path, tiny_models
):
    from pocketbert.converters import model

    onnx_info = EXPORTERS["onnx"]
    fp32_only = dataclasses.replace(onnx_info, handles={Fp32: onnx_info.handles[Fp32]})
    monkeypatch.setitem(EXPORTERS, "onnx", fp32_only)
    monkeypatch.setattr(model, "load_model", _must_not_load)
    with pytest.raises(UserError, match="format onnx does not export 'int8-dynamic'"):
        pocketbert.export(tiny_models["bert"], tmp_path / "o", precision="int8-dynamic")


def test_export_records_the_config_when_int8_static_is_tuned(tiny_models, tmp_path):
    config = Int8Static(calibration_samples=16, dynamic_outliers=False)
    [result] = pocketbert.export(tiny_models["bert"], tmp_path / "b", precision=config, quiet=True)
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["precision"] == "int8-static"
    assert manifest["quantization"] == {
        "type": "Int8Static",
        "min_argmax_agreement": 0.98,
        "min_mean_cosine": 0.98,
        "max_accuracy_drop": 0.01,
        "near_tie_margin": 0.1,
        "calibration_samples": 16,
        "dynamic_outliers": False,
    }
    assert manifest["quantization"] == config_dict(config)
    assert manifest["calibration"]["samples"] == 16
    assert manifest["recipe"]["precisions"] == [{"precision": "int8-static", **config_dict(config)}]
    ops = [n.op_type for n in onnx.load(str(result.path / "model.onnx")).graph.node]
    assert "MatMulIntegerToFloat" in ops
    assert "DynamicQuantizeLinear" not in ops  # every MatMul calibrated: none left dynamic


def test_export_refuses_one_precision_named_twice(monkeypatch, tmp_path, tiny_models):
    from pocketbert.converters import model

    monkeypatch.setattr(model, "load_model", _must_not_load)
    with pytest.raises(UserError, match="name one twice"):
        pocketbert.export(
            tiny_models["bert"], tmp_path / "o", precision=[Int8Static(), "int8-static"]
        )


def test_method_registry_applies_the_handler_of_the_config_type(monkeypatch):
    monkeypatch.setattr(methods, "METHODS", {})

    @dataclass(frozen=True)
    class Scale:
        factor: float = 2.0

    @methods.register_method(Scale)
    def scale(model, config):
        return [x * config.factor for x in model]

    assert methods.apply_method([1.0, 2.0], Scale(3.0)) == [3.0, 6.0]
    assert list(methods.METHODS.items()) == [(Scale, scale)]
    with pytest.raises(ValueError, match="Scale already has a method"):
        methods.register_method(Scale)(scale)

    @dataclass(frozen=True)
    class Prune:
        sparsity: float = 0.5

    with pytest.raises(UserError, match="no compression method handles Prune; known: Scale"):
        methods.apply_method([1.0], Prune())
