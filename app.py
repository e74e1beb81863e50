"""Entry point of `make run` and of a Hugging Face Space: build the Blocks and launch.

Host and port come from Gradio's environment variables (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT);
the default is http://127.0.0.1:7860. No model library is imported until a model is used.
"""
from ui import build_app

demo = build_app()

if __name__ == "__main__":
    demo.launch()
