"""The ``tuneline`` command line: train, demo, predict, show-config, serve."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tuneline import runtime  # noqa: F401  (offline defaults first)
from tuneline.config import ConfigError, TunelineConfig, build_config, load_config

EPILOG = "Overrides use dotted keys: --set train.learning_rate=3e-5 --set model.strategy=lora"


def _add_config_args(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--config", "-c", type=Path, required=required, help="YAML config file")
    parser.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value by dotted key (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuneline", description="Validated, tracked, registered and gated "
                                     "fine-tuning of transformer encoders (Prefect + MLflow).", epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="fine-tune, evaluate, register and gate a model from a config",
                           description="Run the training flow on your data.", epilog=EPILOG)
    _add_config_args(train, required=True)

    demo = sub.add_parser("demo", help="run the full flow on the built-in demo data with MiniLM",
                          description="Generate the demo support-ticket dataset into the work folder and run the "
                          "training flow on it with the embedded defaults (MiniLM, local Prefect, SQLite MLflow).",
                          epilog=EPILOG)
    demo.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override one demo config value by dotted key (repeatable)")

    show = sub.add_parser("show-config", help="print the fully resolved config (defaults filled in) as YAML",
                          description="Validate a config and print it with every default filled in.")
    _add_config_args(show, required=False)

    predict = sub.add_parser("predict", help="predict with a registered model",
                             description="Load models:/NAME@ALIAS (or any MLflow model URI) and predict texts.")
    predict.add_argument("--model", "-m", required=True, help="e.g. models:/tuneline-demo-intents@champion")
    predict.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db")
    predict.add_argument("texts", nargs="*", help="texts to classify (default: one per line on stdin)")

    serve = sub.add_parser("serve", help="serve the training flow as a scheduled Prefect deployment",
                           description="Start a Prefect deployment of the training flow for a config, on a cron "
                           "schedule and/or runnable on demand (needs a Prefect API: `prefect server start`).")
    _add_config_args(serve, required=True)
    serve.add_argument("--cron", help="cron schedule, e.g. '0 3 * * *' (default: on demand only)")
    serve.add_argument("--name", default="scheduled-retrain", help="deployment name")
    return parser


def _demo_config(overrides: list[str]) -> TunelineConfig:
    from tuneline.demo import demo_config_dict, write_demo_csv

    config = build_config(demo_config_dict(Path("support_tickets.csv")), overrides)
    config.data.path = (Path(config.work_dir) / "demo" / "support_tickets.csv").resolve()  # inside the work folder
    print(f"demo data written to {write_demo_csv(config.data.path)}")
    return config


def _print_summary(summary) -> None:
    print("\n" + "=" * 72)
    print("tuneline run finished")
    print(f"  MLflow run        : {summary.run_id} (experiment {summary.experiment_id})")
    print(f"  tracking store    : {summary.tracking_uri}")
    print(f"  registered model  : {summary.registered_model} version {summary.version} "
          f"(aliases: {', '.join(summary.aliases) or 'none'})")
    print(f"  gate              : {'PROMOTED to champion' if summary.promoted else 'not promoted'} - "
          + "; ".join(summary.gate_reasons))
    print(f"  quarantine        : {summary.rejected_records} rejected records in {summary.quarantine_file}")
    print(f"  reports           : {summary.run_dir}")
    print(f"  test {summary.primary_metric} (before vs after):")
    for name, metrics in summary.comparison.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"    {name:<12} {shown}")
    print(f"  browse            : mlflow ui --backend-store-uri {summary.tracking_uri}")
    print(f"  load              : mlflow.pyfunc.load_model('models:/{summary.registered_model}@"
          f"{'champion' if summary.promoted else 'challenger'}')")
    print("=" * 72)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "show-config":
            import yaml

            config = load_config(args.config, args.overrides) if args.config else _demo_config(args.overrides)
            print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
            return 0
        if args.command == "predict":
            return _predict(args)
        config = _demo_config(args.overrides) if args.command == "demo" else load_config(args.config, args.overrides)
        if args.command == "serve":
            from tuneline.deployments.retrain import serve_training

            serve_training(config, name=args.name, cron=args.cron)
            return 0
        from tuneline.flows.train import train_flow

        _print_summary(train_flow(config))
        return 0
    except ConfigError as error:
        print(f"tuneline: {error}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"tuneline: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def _predict(args: argparse.Namespace) -> int:
    import mlflow
    import pandas as pd

    from tuneline.runtime import resolve_tracking_uri

    mlflow.set_tracking_uri(resolve_tracking_uri(args.tracking_uri))
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    output = mlflow.pyfunc.load_model(args.model).predict(texts)
    frame = output if isinstance(output, pd.DataFrame) else pd.DataFrame(output)
    for text, (_, row) in zip(texts, frame.iterrows()):
        print(json.dumps({"text": text, **{k: v for k, v in row.items()}}, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
