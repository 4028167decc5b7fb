"""ganapp's web page: toggle the five techniques, train in the background, watch it live.

    python app.py            # serves on http://127.0.0.1:7860 (GRADIO_SERVER_NAME/PORT apply)

A thin launcher: the page is the package ganapp/web/ (layout, handlers, views, form,
texts, links, API). build_demo, launch_options and main are importable from here, as the
tests and scripts expect.
"""

from __future__ import annotations

# Job processes re-run this file as __mp_main__ (multiprocessing does so with the main
# script, and CPython 3.11's forkserver cannot preload it: its ensure_running passes
# 'main_path' while get_preparation_data names it 'init_main_from_path'). They need none
# of the page, so they skip gradio's and pandas' imports (2-7 s per job, measured).
if __name__ != "__mp_main__":
    from ganapp.web.launch import launch_options, main  # noqa: F401
    from ganapp.web.page import build_demo  # noqa: F401

if __name__ == "__main__":
    main()
