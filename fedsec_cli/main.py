"""``fedsec``: provision a federation of hospital sites and keep it running.

Subcommands (``fedsec <command> --help`` for each)::

    fedsec provision federation.yaml --dir kits/  # coordinator kit + a kit per site
    fedsec register --dir kits/                   # register the sites' keys
    fedsec status --dir kits/                     # SuperLink up? nodes? last run?
    fedsec rotate-keys --dir kits/ hospital-a     # new auth and/or signing key
    fedsec revoke --dir kits/ hospital-a          # a site leaves for good
    fedsec check-data /site/data.csv              # a site's data file, before joining

Errors are one line on stderr (``fedsec: error: ...``) with exit code 2;
no secret is ever printed. See docs/deployment.md for the runbook.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fedsec.errors import FedsecError

if TYPE_CHECKING:
    from fedsec.deploy.rotation import Change

DEFAULT_DIR = Path("federation")
Handler = Callable[[argparse.Namespace], int]


def _provision(args: argparse.Namespace) -> int:
    from fedsec.deploy.kits import provision
    from fedsec.deploy.layout import Layout
    from fedsec.deploy.spec import load_spec

    spec = load_spec(args.federation)
    report = provision(spec, args.dir, force=args.force)
    layout = Layout(args.dir)
    if report.coordinator_created:
        print(f"coordinator kit: {layout.coordinator.root}")
    for name in report.created:
        print(f"site kit: {layout.site(name).root}")
    for name in report.kept:
        print(f"kept (unchanged): {layout.site(name).root}")
    print(f"public files for every site: {layout.public.root}")
    print(f"next: start {layout.coordinator.start_script}, then `fedsec register`")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _register(args: argparse.Namespace) -> int:
    from fedsec_cli.registration import register_sites

    for site, node in register_sites(args.dir, args.sites).items():
        print(f"registered {site}: node {node}")
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from fedsec_cli.status import collect

    status = collect(args.dir)
    if args.json:
        print(
            json.dumps(
                {
                    "reachable": status.reachable,
                    "reach-detail": status.reach_detail,
                    "nodes": status.nodes,
                    "nodes-error": status.nodes_error,
                    "run": status.run,
                    "runs-error": status.runs_error,
                    "rounds": [
                        {"round": r.round, "backend": r.backend, **r.values}
                        for r in status.rounds
                    ],
                }
            )
        )
    else:
        print("\n".join(status.lines()))
    return 0 if status.reachable else 1


def _rotate(args: argparse.Namespace) -> int:
    from fedsec.deploy.layout import Layout
    from fedsec.deploy.rotation import rotate

    change = rotate(
        Layout(args.dir),
        args.site,
        auth=not args.signing_only,
        signing=not args.auth_only,
    )
    return _report_change(args, change)


def _revoke(args: argparse.Namespace) -> int:
    from fedsec.deploy.layout import Layout
    from fedsec.deploy.rotation import revoke

    return _report_change(args, revoke(Layout(args.dir), args.site))


def _report_change(args: argparse.Namespace, change: Change) -> int:
    if args.apply:
        from fedsec_cli.registration import apply_change

        for line in apply_change(args.dir, change):
            print(line)
    elif change.lines:
        print("run at the coordinator (in its kit, after `. ./flwr-env.sh`):")
        for line in change.lines:
            print(f"  {line}")
    for note in change.notes:
        print(f"note: {note}")
    return 0


def _check_data(argv: Sequence[str]) -> int:
    from clients.check_data import main as check_data_main

    sys.argv[0] = "fedsec check-data"  # its usage line names the right command
    return check_data_main(list(argv))


def build_parser() -> argparse.ArgumentParser:
    """The ``fedsec`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="fedsec",
        description="Provision and run a fedsec federation of hospital sites "
        "(docs/deployment.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def folder(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--dir",
            type=Path,
            default=DEFAULT_DIR,
            help=f"the provisioned federation's folder (default: {DEFAULT_DIR})",
        )

    p = sub.add_parser(
        "provision",
        help="write the coordinator's kit and one kit per site from a YAML file",
        description="Write the coordinator's kit and one kit per site (keys, "
        "certificates, policy, node config, start scripts) from a federation "
        "file. Private keys 0600, folders 0700. Re-running with more sites adds "
        "them and leaves the others untouched; nothing is replaced without --force.",
    )
    p.add_argument("federation", type=Path, help="the federation file (YAML)")
    folder(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="replace existing kits (every site gets new keys, to register again)",
    )
    p.set_defaults(handler=_provision)

    p = sub.add_parser(
        "register",
        help="coordinator: register the sites' SuperNode keys with the SuperLink",
        description="Run `flwr supernode register` for every site not registered "
        "yet (or the sites named) and record the node ids in coordinator/nodes.json. "
        "The SuperLink must be running.",
    )
    folder(p)
    p.add_argument("sites", nargs="*", help="only these sites (default: all not yet)")
    p.set_defaults(handler=_register)

    p = sub.add_parser(
        "status",
        help="is the SuperLink reachable, which nodes are online, the last run",
        description="Check the SuperLink (a TLS handshake trusting only the "
        "federation's CA), list its nodes (`flwr supernode list`) and show the "
        "last run with its round lines (`flwr ls`, `flwr log`). Exit code 1 if "
        "the SuperLink is not reachable.",
    )
    folder(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_status)

    for name, handler, text in (
        (
            "rotate-keys",
            _rotate,
            "give a site a new SuperNode key pair and/or signing key; prints the "
            "`flwr supernode unregister`/`register` lines and updates the registry",
        ),
        (
            "revoke",
            _revoke,
            "take a site out for good: unregister its key, drop it from the registry",
        ),
    ):
        p = sub.add_parser(name, help=text.split(";")[0], description=text + ".")
        folder(p)
        p.add_argument("site", help="the site's name")
        p.add_argument(
            "--apply",
            action="store_true",
            help="run the flwr lines now against the running SuperLink",
        )
        if name == "rotate-keys":
            only = p.add_mutually_exclusive_group()
            only.add_argument(
                "--auth-only", action="store_true", help="only the SuperNode key pair"
            )
            only.add_argument(
                "--signing-only", action="store_true", help="only the signing key"
            )
        p.set_defaults(handler=handler)

    sub.add_parser(
        "check-data",
        help="check a site's data file against the federation's task "
        "(`fedsec check-data --help`)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fedsec`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["check-data"]:
        # forwarded as is: clients/check_data.py owns its options and help
        return _check_data(args_list[1:])
    args = build_parser().parse_args(args_list)
    handler: Handler = args.handler
    try:
        return handler(args)
    except FedsecError as exc:
        print(f"fedsec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
