"""Hub fixtures shared by the push, space and ensemble tests: nothing they do reaches a network."""

from types import SimpleNamespace

import huggingface_hub
import pytest


@pytest.fixture
def hub_calls(monkeypatch):
    """Intercepts HfApi's writes (nothing reaches a network) and records them; the repositories' files (by repo
    and revision) follow the commits, for a second push to list."""
    calls, files = [], {}

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", self.endpoint, repo_id, kwargs))
        return SimpleNamespace(repo_id=repo_id)

    def create_branch(self, repo_id, branch, **kwargs):
        calls.append(("create_branch", self.endpoint, repo_id, branch, kwargs))
        files.setdefault((repo_id, branch), set(files.get((repo_id, None), ())))

    def list_repo_files(self, repo_id, revision=None, **kwargs):
        return sorted(files.get((repo_id, revision), ()))

    def create_commit(self, repo_id, operations, **kwargs):
        calls.append(("create_commit", self.endpoint, repo_id, kwargs, operations))
        held = files.setdefault((repo_id, kwargs.get("revision")), set())
        for operation in operations:
            if isinstance(operation, huggingface_hub.CommitOperationDelete):
                held.discard(operation.path_in_repo)
            else:
                held.add(operation.path_in_repo)
        return SimpleNamespace(commit_url=f"{self.endpoint}/{repo_id}/commit/0")

    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self, token=None: {"name": "someone"})
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", create_branch)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    return calls


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    return "hf_test_token"


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-here"))


@pytest.fixture
def online(monkeypatch):
    """Lets huggingface_hub send requests (to 127.0.0.1 only: each test sets HF_ENDPOINT to it)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
