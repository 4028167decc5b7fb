"""ganapp: watch the five techniques of Salimans et al. (2016) train a GAN.

The engine (this package) never imports gradio; app.py is the front end.
"""

__version__ = "0.1.0"
