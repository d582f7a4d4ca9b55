"""A Hugging Face Space that serves a pushed minBERT model repository in the Gradio demo of `minbert serve`.

The Space holds four files, self-contained (no hf_minbert there):
    demo_app.py       hf_minbert/demo_app.py, copied unchanged: it imports only gradio, torch, transformers,
                      huggingface_hub and the standard library
    app.py            names the model repository and launches the demo over it
    requirements.txt  those four packages, at least at the versions installed here
    README.md         the Space's front matter (sdk: gradio, app_file, the model repository) and a line of text

    space_files(model_repo_id)                      {file name: text}
    write_space(folder, model_repo_id)              the files, in `folder`
    push_space(model_repo_id, space_repo_id, ...)   token and endpoint checked, then the Space created and committed
"""
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import CommitOperationAdd, HfApi, SpaceCard, SpaceCardData
from huggingface_hub.utils import validate_repo_id

from .hub import HubAccessError, _one_line, check_hub_access, hub_endpoint, resolve_token

APP_FILE = "app.py"
# Read as a file, not imported: writing a Space must not need gradio installed here.
DEMO_APP = Path(__file__).with_name("demo_app.py")
# What demo_app.py and app.py import (tests/test_space.py checks it against their import statements).
REQUIREMENTS = ("gradio", "torch", "transformers", "huggingface_hub")

APP_TEMPLATE = '''"""The minBERT demo over the model repository {model_repo_id} (written by `minbert space`)."""
from demo_app import build_demo, launch

MODEL_REPO_ID = "{model_repo_id}"

launch(build_demo(MODEL_REPO_ID))
'''


def check_model_repo_id(model_repo_id):
    """The model repository a Space serves, as its app loads it: a full id (no token's namespace completes it
    there)."""
    validate_repo_id(model_repo_id)
    if "/" not in model_repo_id:
        raise ValueError(f"--repo_id {model_repo_id}: a Space loads the model by its full id: give it as user/name")


# The pipelines of a model folder's own pipelines.py that the demo answers with (demo_app.DemoModel), each where the
# model has a head it serves: (pipeline task, the heads' pair encodings and kinds; None: always).
DEMO_PIPELINES = (("minbert-multitask", None),
                  ("text-classification", (("single",), ("classification", "binary"))),
                  ("paraphrase-detection", (("cross", "bi"), ("binary",))),
                  ("sentence-similarity", (("cross", "bi"), ("regression",))))


def check_served_model(model_dir):
    """The demo answers through the minBERT pipelines a model folder names in its config (`custom_pipelines`): a
    folder without them (a masked-LM or sequence-classification model) is refused, as its app would fail, and so
    is one saved by an hf_minbert whose pipelines.py lacked one the demo uses, naming the way to bring it up to date."""
    import json

    config = Path(model_dir) / "config.json"
    if not config.is_file():
        raise ValueError(f"{model_dir}: no config.json; is this a saved model folder?")
    saved = json.loads(config.read_text(encoding="utf-8"))
    named = saved.get("custom_pipelines")
    if not named:
        raise ValueError(f"{config}: no custom_pipelines, so this is not a multitask minBERT model (or an ensemble) "
                         "saved by hf_minbert: the demo has nothing to answer with")
    heads = (saved.get("tasks") or {}).values()
    missing = [task for task, serves in DEMO_PIPELINES if task not in named and (serves is None or any(
        spec.get("pair_encoding") in serves[0] and spec.get("kind") in serves[1] for spec in heads))]
    if missing:
        raise ValueError(f"{config}: saved by an earlier hf_minbert whose pipelines lack {', '.join(missing)}, which "
                         "the demo answers with: load and save the folder again with this one "
                         "(hf_minbert.ensemble.load_multitask_model(DIR).save_pretrained(DIR); the answers stay the same)")


def default_space_repo_id(model_repo_id) -> str:
    return f"{model_repo_id}-demo"


def requirements_txt() -> str:
    """One line per package the Space imports, at least the version installed here (the one tested)."""
    lines = []
    for name in REQUIREMENTS:
        installed = _installed_version(name)
        lines.append(f"{name}>={installed}" if installed else name)
    return "\n".join(lines) + "\n"


def space_card(model_repo_id) -> SpaceCard:
    gradio_version = _installed_version("gradio")
    data = SpaceCardData(title=f"minBERT demo: {model_repo_id.split('/')[-1]}", sdk="gradio",
                         sdk_version=gradio_version, app_file=APP_FILE, models=[model_repo_id], pinned=False)
    body = (f"# minBERT demo\n\nTry [{model_repo_id}]({hub_endpoint()}/{model_repo_id}), a multitask minBERT: "
            "sentiment, paraphrase detection and semantic similarity, each in its own tab and all three at once.\n\n"
            "Written by `minbert space` (hf_minbert).\n")
    return SpaceCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def space_files(model_repo_id) -> dict:
    """{file name: text} of the Space serving `model_repo_id`."""
    check_model_repo_id(model_repo_id)
    return {
        APP_FILE: APP_TEMPLATE.format(model_repo_id=model_repo_id),
        DEMO_APP.name: DEMO_APP.read_text(encoding="utf-8"),
        "requirements.txt": requirements_txt(),
        "README.md": str(space_card(model_repo_id)),
    }


def write_space(folder, model_repo_id) -> list:
    """Write the Space's files into `folder` (created if needed); return their paths."""
    folder = Path(folder)
    files = space_files(model_repo_id)
    _check_space_folder(folder, files)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / name for name in files]


def _check_space_folder(folder, files):
    """Refuse a folder whose files the Space's would replace (a model folder's card is its README.md); an earlier
    Space's files are replaced."""
    if (folder / "config.json").is_file():
        raise ValueError(f"--output_dir {folder} holds a model (config.json): the Space's README.md would replace its "
                         "card; write the Space to a folder of its own")
    for name in files:
        path = folder / name
        if name == "README.md" and path.is_file() and "sdk: gradio" not in path.read_text(encoding="utf-8", errors="replace"):
            raise ValueError(f"--output_dir {folder}: its README.md is not a Space's card and would be replaced; "
                             "write the Space to a folder of its own")


def checked_endpoint() -> str:
    """HF_ENDPOINT (or the default Hub), refused at once with a one-line error when it is not an http(s) URL."""
    endpoint = hub_endpoint()
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"HF_ENDPOINT={endpoint!r} is not an http(s) URL such as https://huggingface.co")
    return endpoint


def check_space_upload(model_repo_id, space_repo_id=None) -> str:
    """What a Space upload needs besides the token, checked before any work: the endpoint and both
    repository ids (ValueError, one line, if not). Returns the Space's id."""
    checked_endpoint()
    check_model_repo_id(model_repo_id)
    space_repo_id = space_repo_id or default_space_repo_id(model_repo_id)
    validate_repo_id(space_repo_id)
    return space_repo_id


def push_space(model_repo_id, space_repo_id=None, *, private=None, token=None,
               commit_message="Upload minBERT demo", api=None, check_access=True):
    """Create the Gradio Space `space_repo_id` (default: `<model_repo_id>-demo`) on HF_ENDPOINT if needed and
    commit the files that serve `model_repo_id`, under `push_model_dir`'s rules: the token, the endpoint's
    URL and both ids are checked first, then that the endpoint answers and accepts the token
    (`check_access=False`: the caller just did), all before any write; a refusal is a one-line
    `HubAccessError`. Returns the `CommitInfo` of the commit."""
    token = resolve_token(token)
    space_repo_id = check_space_upload(model_repo_id, space_repo_id)
    files = space_files(model_repo_id)
    api = api if api is not None else HfApi(endpoint=hub_endpoint(), token=token)
    if check_access:
        check_hub_access(token, api)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=text.encode("utf-8"))
                  for name, text in files.items()]
    try:
        repo = api.create_repo(space_repo_id, token=token, private=private, repo_type="space", space_sdk="gradio",
                               exist_ok=True)
        return api.create_commit(repo.repo_id, operations, commit_message=commit_message, token=token,
                                 repo_type="space")
    except Exception as error:  # as push_model_dir does: one line, whatever the transport
        message = f"upload of the Space {space_repo_id} on {api.endpoint} failed: {_one_line(error)}"
        raise HubAccessError(message) from None


def _installed_version(name):
    try:
        return version(name).split("+")[0]  # "2.13.0+cpu" -> "2.13.0": a local build tag means nothing on PyPI
    except PackageNotFoundError:
        return None
