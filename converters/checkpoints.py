"""Training checkpoints: ``<work>/checkpoints/step-N``, the newest complete one named in ``latest``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


class Checkpoints:
    """``<work>/checkpoints/step-N`` directories, the newest complete one named in ``latest``."""

    def __init__(self, work: Path) -> None:
        self.root = work / "checkpoints"
        self.pointer = self.root / "latest"

    def latest(self) -> Path | None:
        if not self.pointer.is_file():
            return None
        path = self.root / self.pointer.read_text().strip()
        return path if path.is_dir() else None

    def save(self, accelerator, state: dict) -> None:
        name = f"step-{state['global_step']:08d}"
        tmp = self.root / f"{name}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp), safe_serialization=True)
        if accelerator.is_main_process:
            (tmp / "trainer_state.json").write_text(json.dumps(state))
            shutil.rmtree(self.root / name, ignore_errors=True)
            os.replace(tmp, self.root / name)
            pointer_tmp = self.root / "latest.tmp"
            pointer_tmp.write_text(name)
            os.replace(pointer_tmp, self.pointer)
            for old in self.root.glob("step-*"):
                if old.name != name:
                    shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()
