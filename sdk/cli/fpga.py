"""The fpga verbs: ``vectors`` (golden vectors of an fpga bundle) and ``fpga-model`` (the
accelerator model's per-layer table); sdk/cli/main.py adds them with ``add_parsers``."""

from __future__ import annotations

import argparse
import json

from pocketbert.core.errors import UserError


def cmd_vectors(args: argparse.Namespace) -> int:
    from pocketbert.core.texts import BUILTIN, read_texts
    from pocketbert.fpga_vectors import replay_vectors, write_vectors

    if args.check:
        ops = replay_vectors(args.bundle, args.check)
        print(f"{args.check}: {ops} op(s) replayed from their recorded inputs, identical bytes")
        return 0
    if not args.output:
        raise UserError("give -o DIR for the vectors to write (or --check DIR to replay some)")
    if args.n < 1:
        raise UserError(f"-n takes the number of sentences, 1 or more (got {args.n})")
    texts = read_texts(args.input) if args.input else list(BUILTIN)
    texts = [t for t in texts if t.strip()][: args.n]
    if len(texts) < args.n:
        source = f"'{args.input}'" if args.input else "the built-in sentences"
        raise UserError(f"-n {args.n}: {source} hold only {len(texts)}; give fewer or --input FILE")
    out = write_vectors(args.bundle, texts, args.output)
    ops = replay_vectors(args.bundle, out)
    print(f"wrote {len(texts)} sentence(s) to {out}; replayed {ops} op(s): identical bytes")
    return 0


def cmd_fpga_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pocketbert.devices import catalog_path, get_devices, load_devices
    from pocketbert.lab.fpga_model import Accelerator, bundle_layers, estimate

    (device,) = get_devices([args.device], load_devices(catalog_path(args.devices)))
    if device.kind != "fpga":
        raise UserError(f"device {device.id} is a {device.kind}; give a device of kind fpga")
    layers, _, seq = bundle_layers(Path(args.bundle), args.seq_len)
    result = estimate(Accelerator.from_device(device), layers)
    result = {"device": device.id, "seq_len": seq, "method": "estimated", **result}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(format_layers(result))
    return 0


def format_layers(result: dict) -> str:
    """The per-layer table, then the totals."""
    head = f"{'layer':<18}{'op':<10}{'MACs':>12}{'array cyc':>11}{'vec cyc':>9}"
    head += f"{'DDR B':>10}{'on-chip B':>11}{'ms':>9}  bound"
    lines = [head]
    for r in result["layers"]:
        lines.append(
            f"{r['layer']:<18}{r['op']:<10}{r['macs']:>12,}{r['gemm_cycles']:>11,}"
            f"{r['vector_cycles']:>9,}{r['ddr_bytes']:>10,}{r['on_chip_bytes']:>11,}"
            f"{r['ms']:>9.4f}  {r['bound']}"
        )
    a, u = result["accelerator"], result["utilisation"]
    lines.append(
        f"{result['device']} (estimated): {result['estimate_ms']:.3f} ms at seq "
        f"{result['seq_len']}, {result['throughput_per_s']:g}/s, bound: {result['bound']}; "
        f"array {a['array'][0]}x{a['array'][1]} at {a['clock_mhz']:g} MHz; DSP "
        f"{u['dsp']:.0%}, BRAM {u['bram36'] or 0:.0%}, URAM {u['uram'] or 0:.0%}; MAC "
        f"efficiency {u['mac_efficiency']:.0%}; weights "
        + ("resident on chip" if result["weights_resident"] else "streamed from DDR")
    )
    return "\n".join(lines)


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "vectors",
        parents=[common],
        help="golden vectors of an fpga bundle: every op's integer inputs and output",
    )
    p.add_argument("bundle", help="an fpga bundle (pocketbert export --format fpga)")
    p.add_argument("-o", "--output", default=None, help="a new directory for the vectors")
    p.add_argument("-n", type=int, default=8, help="how many sentences (default 8)")
    p.add_argument(
        "--input",
        default=None,
        metavar="FILE",
        help="sentences from a file (.txt one per line, or .csv/.tsv/.jsonl with a 'text' "
        "column); default: the built-in sentences",
    )
    p.add_argument("--check", default=None, metavar="DIR", help="replay existing vectors instead")
    p.set_defaults(func=cmd_vectors)

    p = sub.add_parser(
        "fpga-model",
        parents=[common],
        help="estimate an fpga bundle on an fpga device's systolic-array model, layer by layer",
    )
    p.add_argument("bundle", help="an fpga bundle")
    p.add_argument("--device", default="zcu104", help="a kind: fpga device (default zcu104)")
    p.add_argument("--seq-len", type=int, default=None, help="tokens (default: the bundle's)")
    p.add_argument("--devices", default=None, help="the devices.yaml to use")
    p.set_defaults(func=cmd_fpga_model)
