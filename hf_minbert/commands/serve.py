"""`minbert serve DIR [--port 7860] [--host 127.0.0.1]`: try a saved model in the browser, until Ctrl-C.

A Gradio app (hf_minbert.demo_app) over any model folder `minbert evaluate` accepts, ensembles included: a
tab per task (sentiment as bars over the five classes, paraphrase, similarity on a 0-5 gauge with the
bi-encoder cosine where the head has one) and one that answers all three, with the model's dev metrics
beside them. It answers through the pipelines saved with the model (trust_remote_code=True), as a Hub user
would. Gradio is an optional extra: pip install "hf_minbert[demo]".
"""
import argparse
import socket
import sys
from pathlib import Path

from hf_minbert.commands.common import home_path

INSTALL_HINT = 'install the demo extra: pip install "hf_minbert[demo]"'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=home_path, help="saved model folder (minbert train's or minbert ensemble's output)")
    parser.add_argument("--port", type=port_number, default=7860, help="port to listen on (default: 7860)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 shares it)")
    return parser


def port_number(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"must lie in [1, 65535], got {text}")
    return port


class ServeError(Exception):
    """A problem with the folder or the installation: printed as one line, exit status 2."""


def check_model_dir(model_dir) -> Path:
    """The folder, if it holds a model the demo's pipelines can load — its code, its weights (read back) and a
    tokenizer that knows words —; else a ServeError naming what is missing."""
    from hf_minbert.hub import check_weights, remote_load_files
    from hf_minbert.space import check_served_model

    from .common import CommandError, check_not_adapters, load_tokenizer

    path = Path(model_dir)
    try:
        check_not_adapters(str(path), path)
        check_served_model(path)
        remote_load_files(path)  # the config's code files, the weights and the tokenizer's files are there
        check_weights(path)
        load_tokenizer(str(path))
    except (CommandError, OSError, ValueError) as error:
        raise ServeError(str(error)) from None
    return path


def check_port(host, port):
    """A ServeError now, rather than after the model has loaded, if `host:port` cannot be listened on (an IPv4 or,
    as the server takes it too, an IPv6 address)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself will
            probe.bind(address)
    except OSError as error:
        raise ServeError(f"cannot listen on {url_host(host)}:{port}: {error.strerror or error}") from None


def url_host(host) -> str:
    """`host` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def import_demo_app():
    """hf_minbert.demo_app, or a ServeError saying how to install gradio."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ServeError(f"gradio is not installed; {INSTALL_HINT}") from None
    from hf_minbert import demo_app

    return demo_app


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model_dir = check_model_dir(args.model_dir)
        demo_app = import_demo_app()
        check_port(args.host, args.port)
        demo = demo_app.build_demo(str(model_dir))
    except (ServeError, OSError, ValueError) as error:
        print(f"minbert serve: {error}", file=sys.stderr)
        return 2
    print(f"serving {model_dir} on http://{url_host(args.host)}:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        demo_app.launch(demo, server_name=args.host, server_port=args.port, share=False)
    except OSError as error:  # the port is taken, or the address is not this machine's
        print(f"minbert serve: cannot listen on {url_host(args.host)}:{args.port}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
