"""TFLite (LiteRT) export: litert-torch converts, ai-edge-quantizer quantizes.

- fp32: ``litert_torch.convert(model, sample).export(path)``, a static [1, max_seq_len]
  int32 signature (the runtime pads shorter inputs).
- int8-dynamic: ``dynamic_wi8_afp32`` on the fp32 file (int8 weights, activations
  quantized on the fly; the embedding table too).
- int8-static: int8 weights and calibrated int8 activations on the fully connected layers
  (XNNPACK runs them as QS8), except layers whose calibrated output range is too wide for
  int8 (BERT's FFN output feeds the residual stream: |x| up to ~200 on MiniLM), which fall
  back to dynamic int8. Full ``static_wi8_ai8`` quantizes the additive attention mask and
  the residual stream too and destroys the output (cosine 0.35 on MiniLM; a16w8: 0.57 and
  25x slower); litert-torch's PT2E dynamic mode writes files that do not load.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pocketbert.converters.quantization import Fp32, Int8Dynamic, Int8Static
from pocketbert.converters.registry import register_exporter
from pocketbert.converters.spec import INPUT_NAMES, Exported, ExportSpec, pad_feed
from pocketbert.core.errors import UserError

# An int8 activation over a range wider than this loses too much (step > 0.25).
STATIC_MAX_ABS = 32.0
TOOLS = ("litert-torch", "ai-edge-quantizer", "ai-edge-litert", "torch")


def _convert(model: nn.Module, spec: ExportSpec, path: Path) -> None:
    import litert_torch

    kwargs = {n: torch.from_numpy(np.ascontiguousarray(spec.sample[n])) for n in INPUT_NAMES}
    litert_torch.convert(model, sample_kwargs=kwargs).export(str(path))


def _fp32(fp32: Path, out: Path, spec: ExportSpec) -> dict:
    shutil.move(fp32, out)
    return {}


def _int8_dynamic(fp32: Path, out: Path, spec: ExportSpec) -> dict:
    from ai_edge_quantizer import quantizer, recipe

    result = quantizer.Quantizer(str(fp32), recipe.dynamic_wi8_afp32()).quantize(
        enable_progress_report=False
    )
    result.export_model(str(out), overwrite=True)
    return {"recipe": "dynamic_wi8_afp32"}


def _calibration(fp32: Path, spec: ExportSpec) -> dict[str, list[dict[str, np.ndarray]]]:
    """The spec's calibration feeds, padded, keyed by the file's signature and input names."""
    from ai_edge_litert.interpreter import Interpreter

    if not spec.calibration:
        raise UserError(
            "int8-static needs calibration text (ExportSpec.calibration is empty); "
            "give some examples, or choose precision int8-dynamic"
        )
    interpreter = Interpreter(model_path=str(fp32))
    (key, signature), *_ = interpreter.get_signature_list().items()
    inputs = interpreter.get_signature_runner(key).get_input_details()
    names = dict(
        zip(INPUT_NAMES, signature["inputs"], strict=True)
    )  # kwargs keep their names; else order
    names.update({n: n for n in INPUT_NAMES if n in inputs})
    feeds = []
    for feed in spec.calibration:
        padded = pad_feed(feed, spec.max_seq_len)
        feeds.append({names[n]: padded[n].astype(inputs[names[n]]["dtype"]) for n in INPUT_NAMES})
    return {key: feeds}


def _wide_outputs(qsvs: dict, fp32: Path) -> list[str]:
    """Output tensor names of fully connected layers whose calibrated range is too wide."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(fp32))
    tensors = interpreter.get_tensor_details()
    wide = set()
    for op in interpreter._get_ops_details():  # noqa: SLF001 (the only public op listing)
        if op["op_name"] != "FULLY_CONNECTED":
            continue
        name = tensors[op["outputs"][0]]["name"]
        qsv = qsvs.get(name) or {}
        bounds = [np.abs(np.asarray(qsv[k])).max() for k in ("min", "max") if k in qsv]
        if not bounds or max(bounds) > STATIC_MAX_ABS:
            wide.add(name)
    return sorted(wide)


def _int8_static(fp32: Path, out: Path, spec: ExportSpec) -> dict:
    from ai_edge_quantizer import quantizer, recipe, recipe_manager
    from ai_edge_quantizer.qtyping import TFLOperationName as Op

    data = _calibration(fp32, spec)
    threads = os.cpu_count() or 1
    qsvs = quantizer.Quantizer(str(fp32), recipe.static_wi8_ai8()).calibrate(
        data, num_threads=threads
    )
    wide = _wide_outputs(qsvs, fp32) if spec.precision.dynamic_outliers else []
    plan = recipe_manager.RecipeManager()
    plan.add_static_config(".*", Op.FULLY_CONNECTED, activation_num_bits=8, weight_num_bits=8)
    if wide:  # the later, narrower scope wins for these layers
        scope = "|".join(re.escape(n) for n in wide)
        plan.add_dynamic_config(scope, Op.FULLY_CONNECTED, num_bits=8)
    plan.add_dynamic_config(".*", Op.EMBEDDING_LOOKUP, num_bits=8)
    q = quantizer.Quantizer(str(fp32), plan.get_quantization_recipe())
    result = q.quantize(qsvs, enable_progress_report=False)
    result.export_model(str(out), overwrite=True)
    return {
        "recipe": "static a8w8 fully connected",
        "static_fc_max_abs": STATIC_MAX_ABS,
        "dynamic_fc_scopes": len(wide),
    }


def op_set(path: Path) -> tuple[Counter, dict[str, int]]:
    """(op name -> count over all subgraphs, op name -> highest version) of a .tflite file."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes: list[tuple[str, int]] = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        name = custom.decode() if custom else builtin.get(number, f"BUILTIN_{number}")
        codes.append((name, code.Version()))
    counts: Counter = Counter()
    versions: dict[str, int] = {}
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for j in range(graph.OperatorsLength()):
            name, version = codes[graph.Operators(j).OpcodeIndex()]
            counts[name] += 1
            versions[name] = max(version, versions.get(name, 0))
    return counts, versions


def _checks(path: Path, spec: ExportSpec) -> dict:
    """Refuse Flex ops, note old-runtime traps, and make sure the file loads and runs."""
    from pocketbert.runtimes.litert import load

    counts, versions = op_set(path)
    flex = sorted(n for n in counts if n.startswith("Flex"))
    if flex:
        raise UserError(
            f"the TFLite file needs TensorFlow (Flex) ops {', '.join(flex)}, which phones and "
            "boards do not ship; export a model whose layers map to TFLite builtins"
        )
    warnings = []
    if versions.get("GATHER_ND", 0) >= 5:
        warnings.append("GATHER_ND v5: loads in ai-edge-litert, not in tflite-runtime 2.14")
    session = load(path, threads=1)
    output = session.run(spec.sample)[0]
    if not np.isfinite(output).all():
        raise RuntimeError(f"the exported TFLite file gives non-finite outputs: {path}")
    return {
        "ops": dict(sorted(counts.items())),
        "flex_ops": flex,
        "op_versions": dict(sorted(versions.items())),
        "warnings": warnings,
    }


def _versions() -> dict[str, str]:
    found = {}
    for dist in TOOLS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


@register_exporter(
    "tflite",
    suffix=".tflite",
    runtime="litert",
    handles={Fp32: _fp32, Int8Dynamic: _int8_dynamic, Int8Static: _int8_static},
)
def export(model: nn.Module, spec: ExportSpec, out: Path, quantize) -> Exported:
    """litert-torch's fp32 file, then ``quantize(fp32, file, spec) -> recipe checks``."""
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="pocketbert-tflite-", dir=spec.work_dir) as tmp:
        fp32, written = Path(tmp) / "fp32.tflite", Path(tmp) / "model.tflite"
        _convert(model, spec, fp32)
        recipe = quantize(fp32, written, spec)
        checks = _checks(written, spec) | recipe
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(written), str(out))
    return Exported(
        path=out, dynamic_seq=False, input_dtype="int32", checks=checks, tools=_versions()
    )
