"""The web page: the one package of ganapp that may import gradio (app.py launches it).

    page      the layout and wiring: build_demo(manager)
    handlers  the events' handlers, small named methods the tests call directly
    views     what the page shows: captions, pictures, tables (pure functions)
    form      the settings form, generated from GANConfig's field metadata
    text      every string in English and 繁體中文
    links     links a teacher can share (preset, settings, language, view)
    export    a pair as one captioned animated GIF (Pillow)
    core      GanApp: lookups over the job server, cached renderings
    api       the named API endpoints for gradio_client
    safety    escaping, bounds and checks for everything a visitor sends or wrote
    style     CSS and the head script (projector scale, views, hidden parts)
    launch    launch() settings and main()

The engine (ganapp.*) never imports gradio (STYLE habit 7).
"""
