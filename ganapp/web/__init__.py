"""The web page's helpers: the one package of ganapp that may import gradio (app.py uses it).

The engine (ganapp.*) never imports gradio (STYLE habit 7); what only the page needs lives here.
"""
