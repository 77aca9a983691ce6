"""The former name of the main job: `python -m funnel_tfm.pretrain_demo` runs `funnel_tfm.demo` (same flags)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("funnel_tfm.demo", run_name="__main__", alter_sys=True)  # an entry point, not an import
