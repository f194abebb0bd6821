"""Build hook: compiles flowlang's optional C speed-up (src/flowlang/_plain.c, the input check's walk)
with setuptools' compiler support. Where it cannot be built (no C compiler, no Python headers) the
install goes on without it and flowlang uses the same walk written in Python (slower, same answers)."""

from __future__ import annotations

import os
import shutil
import sysconfig
import tempfile
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = os.path.join("src", "flowlang", "_plain.c")
MODULE = "flowlang._plain"


def compile_speedup(root: str, out_dir: str) -> str:
    """Compile the extension into out_dir; returns the built file's path."""
    from setuptools import Distribution, Extension

    extension = Extension(MODULE, [os.path.join(root, SOURCE)])
    distribution = Distribution({"name": "flowlang-speedup", "ext_modules": [extension]})
    command: Any = distribution.get_command_obj("build_ext")
    command.build_lib = out_dir
    command.build_temp = os.path.join(out_dir, "temp")
    command.ensure_finalized()
    command.run()
    return str(command.get_ext_fullpath(MODULE))


class SpeedupBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"
    out_dir: str | None = None  # the compiler's files: removed once the wheel is built

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        beside = os.path.join(self.root, "src", "flowlang", "_plain" + suffix)
        if version == "editable" and os.path.exists(beside):
            os.remove(beside)  # built from the C file as it was: rebuilt below, else the Python walk is used
        if os.environ.get("FLOWLANG_NO_C_SPEEDUP"):
            return
        self.out_dir = out_dir = tempfile.mkdtemp(prefix="flowlang-speedup-")
        try:
            built = compile_speedup(self.root, out_dir)
        except Exception as exc:  # any failure to compile: install without the speed-up
            self.app.display_warning(f"flowlang: the optional C speed-up was not built ({exc}); the same "
                                     "check in Python is used instead")
            return
        if version == "editable":  # the installed package is src/ itself: put the module beside the sources
            shutil.copyfile(built, beside)
            return
        build_data["force_include"][built] = "flowlang/_plain" + suffix
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self.out_dir is not None:
            shutil.rmtree(self.out_dir, ignore_errors=True)
            self.out_dir = None
