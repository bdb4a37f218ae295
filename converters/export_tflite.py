"""TFLite (LiteRT) export: litert-torch converts, ai-edge-quantizer quantizes.

- fp32: ``litert_torch.signature("seq_16", model, sample[:, :16]).signature(...)``: one
  static int32 signature ``seq_<n>`` per length of ``bucket_lengths(max_seq_len)`` (16, 32,
  ... and the max), the weights shared by all of them; the runtime runs each text at the
  shortest length that fits it, so short text runs at short-text speed.
- int8-dynamic: ``dynamic_wi8_afp32`` on the fp32 file (int8 weights, activations
  quantized on the fly; the embedding table too).
- int8-static: int8 weights and calibrated int8 activations on the fully connected layers
  (XNNPACK runs them as QS8) in every signature, each calibrated at its own length, except layers whose calibrated output range is too wide for
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
from pocketbert.runtimes.litert import bucket_lengths

# An int8 activation over a range wider than this loses too much (step > 0.25).
STATIC_MAX_ABS = 32.0
# Calibration feeds each length bucket gets at least (the shortest texts, cut to fit).
MIN_BUCKET_FEEDS = 4
TOOLS = ("litert-torch", "ai-edge-quantizer", "ai-edge-litert", "torch")


def signature_key(length: int) -> str:
    return f"seq_{length}"


def _convert(model: nn.Module, spec: ExportSpec, path: Path) -> None:
    """One signature per length bucket; litert-torch stores the shared weights once."""
    import litert_torch

    full = {n: np.ascontiguousarray(spec.sample[n]) for n in INPUT_NAMES}
    converter = None
    for length in bucket_lengths(spec.max_seq_len):
        kwargs = {n: torch.from_numpy(np.ascontiguousarray(a[:, :length])) for n, a in full.items()}
        key = signature_key(length)
        converter = (
            litert_torch.signature(key, model, sample_kwargs=kwargs)
            if converter is None
            else converter.signature(key, model, sample_kwargs=kwargs)
        )
    converter.convert().export(str(path))


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


def _used(feed: dict[str, np.ndarray]) -> int:
    """A feed's natural length: up to its last attended token."""
    attended = np.flatnonzero(feed["attention_mask"][0])
    return int(attended[-1]) + 1 if attended.size else 1


def _calibration(fp32: Path, spec: ExportSpec) -> dict[str, list[dict[str, np.ndarray]]]:
    """{signature key: the calibration feeds padded to its length, with its input names}.

    A text goes to every bucket it fits in (the longest bucket gets all, cut to fit); a
    bucket that fewer than MIN_BUCKET_FEEDS texts fit gets the shortest ones cut to it.
    """
    from ai_edge_litert.interpreter import Interpreter

    if not spec.calibration:
        raise UserError(
            "int8-static needs calibration text (ExportSpec.calibration is empty); "
            "give some examples, or choose precision int8-dynamic"
        )
    interpreter = Interpreter(model_path=str(fp32))
    by_length = sorted(spec.calibration, key=_used)
    data = {}
    for key, signature in interpreter.get_signature_list().items():
        inputs = interpreter.get_signature_runner(key).get_input_details()
        names = dict(zip(INPUT_NAMES, signature["inputs"], strict=True))  # else their order
        names.update({n: n for n in INPUT_NAMES if n in inputs})  # kwargs keep their names
        length = int(inputs[names["input_ids"]]["shape"][1])
        fits = [f for f in by_length if _used(f) <= length]
        chosen = fits if len(fits) >= MIN_BUCKET_FEEDS else by_length[:MIN_BUCKET_FEEDS]
        data[key] = [
            {
                names[n]: pad_feed(feed, length)[n].astype(inputs[names[n]]["dtype"])
                for n in INPUT_NAMES
            }
            for feed in (by_length if length >= spec.max_seq_len else chosen)
        ]
    return data


def fully_connected(path: Path) -> list[list[dict]]:
    """Per subgraph, each FULLY_CONNECTED op's output name and input/weight tensor types."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    fc = schema.BuiltinOperator.FULLY_CONNECTED
    graphs = []
    for g in range(model.SubgraphsLength()):
        graph, ops = model.Subgraphs(g), []
        for j in range(graph.OperatorsLength()):
            op = graph.Operators(j)
            code = model.OperatorCodes(op.OpcodeIndex())
            if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != fc:
                continue
            tensor = graph.Tensors
            ops.append(
                {
                    "output": tensor(op.Outputs(0)).Name().decode(),
                    "input": types[tensor(op.Inputs(0)).Type()],
                    "weight": types[tensor(op.Inputs(1)).Type()],
                }
            )
        graphs.append(ops)
    return graphs


def _wide_outputs(qsvs: dict, fp32: Path) -> list[str]:
    """Output tensor names of fully connected layers (any subgraph) whose range is too wide."""
    wide = set()
    for ops in fully_connected(fp32):
        for op in ops:
            qsv = qsvs.get(op["output"]) or {}
            bounds = [np.abs(np.asarray(qsv[k])).max() for k in ("min", "max") if k in qsv]
            if not bounds or max(bounds) > STATIC_MAX_ABS:
                wide.add(op["output"])
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
    from ai_edge_litert.interpreter import Interpreter

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
    signatures = [signature_key(n) for n in bucket_lengths(spec.max_seq_len)]
    session = load(path, threads=1)
    found = sorted(Interpreter(model_path=str(path)).get_signature_list())
    if len(signatures) > 1 and found != sorted(signatures):
        raise RuntimeError(f"the TFLite file has signatures {found}, not {signatures}: {path}")
    for length in bucket_lengths(spec.max_seq_len):  # every signature runs
        output = session.run(pad_feed(spec.sample, length))[0]
        if not np.isfinite(output).all():
            raise RuntimeError(f"the exported TFLite file gives non-finite outputs: {path}")
    return {
        "signatures": signatures,
        "fully_connected": [
            dict(Counter(f"{o['input']}/{o['weight']}" for o in ops))
            for ops in fully_connected(path)
        ],
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
        path=out, dynamic_seq=True, input_dtype="int32", checks=checks, tools=_versions()
    )
