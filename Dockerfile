# ganapp's web app in a container: port 7860, a non-root user with uid 1000 (as Hugging
# Face Docker Spaces run it), `python app.py`. Build and run:
#   docker build -t ganapp . && docker run -p 7860:7860 ganapp
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A CJK font for the pictures the server draws with Chinese captions (the page's 繁體中文).
RUN apt-get update -q && apt-get install -y -q --no-install-recommends fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH
WORKDIR $HOME/app

# torch's CPU build first: PyPI's default wheel brings CUDA libraries (gigabytes) that a
# CPU box never uses. requirements.txt's torch==2.13.0 is then already satisfied.
COPY --chown=user requirements.txt .
RUN pip install --user --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install --user -r requirements.txt

COPY --chown=user . .

# Listen on every interface inside the container; jobs' files go to a temporary folder
# (set GANAPP_RUNS_DIR to keep them on a volume). The GANAPP_* limits apply as well.
ENV GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860
EXPOSE 7860
CMD ["python", "app.py"]
