"""Assemble and run the system: generators, verifiers, the rollout coordinator and the Ray Train learner."""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config, config_to_dict

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_id: str
    tracking_uri: str
    final_model_dir: str
    history: list[dict] = field(default_factory=list)
    wall_seconds: float = 0.0
    position: dict = field(default_factory=dict)
    run_url: str = ""
    weight_sync: dict = field(default_factory=dict)  # the generators' side, see generator_weight_sync


class StartupClock:
    """Seconds spent in each phase of start-up, as ``startup/<phase>_s`` metrics and their total."""

    def __init__(self):
        self._last = time.monotonic()
        self.phases: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = now - self._last
        self._last = now

    def metrics(self) -> dict[str, float]:
        return {**{f"startup/{k}_s": v for k, v in self.phases.items()}, "startup/total_s": sum(self.phases.values())}


def resolve_model_path(cfg: Config) -> str:
    if cfg.model.path:
        return cfg.model.path
    from .models.tiny import RECIPES, tiny_model_path

    return str(tiny_model_path(RECIPES[cfg.model.tiny_recipe]))


def cpus_needed(cfg: Config) -> float:
    r, t = cfg.rollout, cfg.trainer
    return (r.num_generators * r.generator_num_cpus + t.num_workers * t.cpus_per_worker
            + sum(teacher.num_cpus for teacher in cfg.teachers))


# Worker processes' environment: quiet library chatter (progress bars of every model load, tokenizer fork
# warnings) while real warnings stay. APMPO_RAY_VERBOSE=1 keeps the libraries' defaults.
# vLLM's warnings at our scale are advice for large deployments (preload tcmalloc, Triton missing, eager mode).
QUIET_ENV = {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "VLLM_LOGGING_LEVEL": "ERROR",
             "TORCH_CPP_LOG_LEVEL": "ERROR",  # the CPU kernels' NUMA-binding notice
             # MLflow's bar for each appended evaluation table (log_table downloads the table so far)
             "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
             # deprecations inside vLLM and inside DeepSpeed's ZeRO collectives (torch's c10d logger), every step
             "PYTHONWARNINGS": "ignore::FutureWarning:vllm.triton_utils.dispatcher,"
                               "ignore::FutureWarning:torch.distributed.c10d_logger"}


def connect_ray(cfg: Config) -> None:
    """Join the cluster named by ``RAY_ADDRESS`` (as under ``ray job submit``), else start a local one.

    A local cluster declares at least the CPUs the configured layout asks for: on a small machine the
    actors then share cores instead of waiting forever for resources that will never appear. Its dashboard
    (which also serves the state API that Ray Train's placement-group cleaner polls) listens on loopback only.
    """
    import ray

    if ray.is_initialized():
        return
    verbose = bool(os.environ.get("APMPO_RAY_VERBOSE"))
    env_vars = {"TOKENIZERS_PARALLELISM": "false", "APMPO_RAY_VERBOSE": "1"} if verbose else dict(QUIET_ENV)
    for key in QUIET_ENV.keys() - {"TOKENIZERS_PARALLELISM"}:
        if key in os.environ:
            env_vars[key] = os.environ[key]
    if os.environ.get("RAY_ADDRESS"):
        ray.init(runtime_env={"env_vars": env_vars})
        return
    import torch

    if not torch.cuda.is_available():
        env_vars.setdefault("DS_ACCELERATOR", "cpu")  # said, not guessed: DeepSpeed warns when it has to guess
    env_vars.update({key: os.environ.get(key, default) for key, default in LOCAL_TRAIN_SETTINGS.items()})
    # Said in the environment the local raylet inherits rather than as a runtime env: workers Ray has already
    # started then serve the first actors, instead of new ones started for a different runtime env.
    saved = {key: os.environ.get(key) for key in env_vars}
    os.environ.update(env_vars)
    try:
        ray.init(num_cpus=max(os.cpu_count() or 1, int(cpus_needed(cfg) + 0.999)), include_dashboard=True,
                 dashboard_host="127.0.0.1", log_to_driver=True)
    finally:
        for key, value in saved.items():
            if key in LOCAL_TRAIN_SETTINGS:
                continue  # read by Ray Train in this process too
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# Ray Train on a local cluster (a user's own setting stays): no preemption watcher (spot nodes) and no metrics
# (for a Prometheus scrape), two more processes on cores the run needs; and a controller that looks at its
# workers every 0.5 s rather than 2 s, so the run ends (and its failures surface) sooner.
LOCAL_TRAIN_SETTINGS = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_METRICS_ENABLED": "0",
                        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}


def load_training_problems(cfg: Config, tokenizer):
    from .data import load_problems, prompt_encoder

    return load_problems(cfg.task, tokenizer), prompt_encoder(tokenizer, cfg.task)


def prepare_inputs(cfg: Config):
    """The model path, its tokenizer and the tokenized training problems; imports what launching needs."""
    import ray.train.torch  # noqa: F401  (imported here, off the critical path, for train())
    from transformers import AutoTokenizer

    model_path = resolve_model_path(cfg)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    return (model_path, tokenizer, *load_training_problems(cfg, tokenizer))


def start_verifiers(cfg: Config):
    from .verifiers import VerifierPool

    r = cfg.rollout
    return VerifierPool(cfg.task.reward, num_actors=r.num_verifiers, processes_per_actor=r.verifier_processes,
                        timeout_s=r.verifier_timeout_s)


def learner_resources(cfg: Config) -> dict[str, float]:
    """One learner worker's reservation; a colocated worker also holds its engine's CPUs."""
    t, r = cfg.trainer, cfg.rollout
    cpus = t.cpus_per_worker + (r.generator_num_cpus if r.placement == "colocated" else 0)
    resources = {"CPU": cpus}
    if t.use_gpu:
        resources["GPU"] = 1
    if t.learner_resource:
        resources[t.learner_resource] = 1
    return resources


def start_generators(cfg: Config, model_path: str, name_prefix: str = "") -> list:
    """The generator actors; in colocated placement, the mailboxes of the engines the learner workers host."""
    from .generators.actor import GeneratorActor
    from .generators.engine import engine_options

    r = cfg.rollout
    if r.placement == "colocated":
        from .generators.colocated import mailbox_actor

        return [mailbox_actor().options(name=f"{name_prefix}generator-{i}").remote() for i in range(r.num_generators)]
    options = dict(num_cpus=r.generator_num_cpus, num_gpus=r.generator_num_gpus * r.tensor_parallel_size,
                   max_restarts=-1, max_task_retries=0)
    if r.generator_resource:
        # one unit per GPU, as the cluster YAMLs advertise them
        options["resources"] = {r.generator_resource: max(options["num_gpus"], 1)}
    # Named, so operators (and the fault-tolerance test) can find them: ray.get_actor(name).
    return [GeneratorActor.options(name=f"{name_prefix}generator-{i}", **options).remote(
        model_path, **engine_options(cfg, i), tensor_parallel_size=r.tensor_parallel_size,
        weight_sync_backend=cfg.trainer.weight_sync_backend,
        in_process={"auto": None, "in_actor": True, "separate_processes": False}[r.engine_layout])
        for i in range(r.num_generators)]


def train(cfg: Config, *, on_step=None, command: list[str] | None = None) -> TrainResult:
    """Run ``cfg`` to completion; ``on_step(metrics)`` sees each learner step as it is recorded. ``command``
    (the command line) goes into the MLflow run's description."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    launched_at = time.time()  # the learner workers time their own start-up from here (wall clock: other nodes)
    startup = StartupClock()
    # Ray's daemons start in processes of their own while this one imports the libraries, finds (or builds)
    # the model and tokenizes the data: one after the other these took ~4 s and ~3 s.
    with ThreadPoolExecutor(1, thread_name_prefix="prepare-inputs") as background:
        prepared = background.submit(prepare_inputs, cfg)
        connect_ray(cfg)
        startup.mark("ray")
        model_path, tokenizer, problems, encode = prepared.result()
    startup.mark("model_and_data")

    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from ray.util.queue import Empty, Queue

    from .learner.loop import train_loop_per_worker
    from .rollout.coordinator import coordinator_actor
    from .rollout.workflows import make_workflow
    from .tracking import RunLogger, start_run, tracking_uri

    uri = tracking_uri(cfg.tracking.tracking_uri)
    cfg.tracking.tracking_uri = uri  # resolved once: learner workers run in another working directory
    resume = plan_resume(cfg)  # a resume that cannot continue is refused before anything starts
    launch = uuid.uuid4().hex[:8]  # names this launch's actors
    # The actors and the learner start before the MLflow run is set up (Ray Train alone takes 6 s to reach the
    # training loop): the learner workers get the run from the coordinator when they need it. If setting up
    # the run fails, the actors go with their handles.
    generators = start_generators(cfg, model_path, name_prefix=f"apmpo-{launch}-")
    pool = start_verifiers(cfg)
    startup.mark("verifiers")
    start_step = resume["step"] if resume else 0
    if os.environ.get("RAY_ADDRESS") and not Path(cfg.trainer.output_dir).is_absolute():
        log.warning("trainer.output_dir=%s is relative: on a cluster, checkpoints and the final model need a "
                    "directory every node sees (docs/cluster.md, Checkpoints on a cluster)", cfg.trainer.output_dir)

    r, t = cfg.rollout, cfg.trainer
    workflow = make_workflow(cfg, pool.score_async, tokenizer, model_path)
    coordinator = coordinator_actor().options(name=f"apmpo-{launch}-coordinator").remote(
        problems, encode, generators, workflow, prompts_per_step=r.prompts_per_step,
        prompts_per_call=r.prompts_per_call, max_staleness=r.max_staleness, data_seed=cfg.task.seed,
        start_step=start_step, start_version=None if resume else 0)
    progress = Queue(actor_options={"num_cpus": 0})
    coordinator.start.remote()

    use_gpu = t.use_gpu
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": config_to_dict(cfg), "model_path": model_path, "coordinator": coordinator,
                           "generators": generators, "tracking_uri": uri, "start_step": start_step,
                           "resume_from": resume["directory"] if resume else None, "progress": progress,
                           "launched_at": launched_at},
        scaling_config=ScalingConfig(num_workers=t.num_workers, use_gpu=use_gpu,
                                     resources_per_worker=learner_resources(cfg)),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(name=f"learner-{launch}", storage_path=str(Path(cfg.trainer.output_dir).resolve()
                                                                        / "ray_train")),
    )
    outcome: dict = {}

    def fit_then_say_so() -> None:
        outcome.update(result=_fit(trainer))
        progress.put(None)  # after every step's record: the loop below need not wait for a timeout

    fit = threading.Thread(target=fit_then_say_so, daemon=True)
    fit.start()
    try:
        run_id = resume["run_id"] if resume else start_run(cfg, model_path, command=command)
        output = Path(cfg.trainer.output_dir).resolve() / run_id
        final_model_dir = str(output / "final_model")
        coordinator.set_launch_context.remote({"run_id": run_id, "run_dir": str(output),
                                               "final_model_dir": final_model_dir})
        if not resume:
            log_run_inputs(cfg, problems, tokenizer, uri, run_id)
    except BaseException:
        _shutdown(coordinator, generators, pool)
        ray.kill(progress.actor, no_restart=True)
        raise
    startup.mark("tracking")
    history: list[dict] = []
    try:
        while True:
            try:
                metrics = progress.get(timeout=0.5)
            except Empty:
                if not fit.is_alive() and progress.empty():
                    break
                continue
            if metrics is None:
                break
            history.append(metrics)
            if len(history) == 1:
                # generators and the learner (DeepSpeed) start concurrently, up to the first step's end
                startup.mark("generators_and_learner_to_first_step")
                metrics.update(startup.metrics())
                RunLogger(uri, run_id).log_metrics(startup.metrics(), step=start_step)
            if on_step:
                on_step(metrics)
        position = ray.get(coordinator.position.remote())
        weight_sync = generator_weight_sync(cfg, generators)
        if weight_sync:
            RunLogger(uri, run_id).log_metrics({f"weight_sync/{k}": v for k, v in weight_sync.items()},
                                               step=cfg.trainer.max_steps - 1)
    finally:
        _shutdown(coordinator, generators, pool)
        ray.kill(progress.actor, no_restart=True)
    result = outcome.get("result")
    logger = RunLogger(uri, run_id)
    if isinstance(result, BaseException):
        logger.finish("FAILED")
        latest = sorted((output / "checkpoints").glob("step_*/apmpo_state.json"))
        hint = (f"resume with trainer.resume={latest[-1].parent}" if latest else
                "no checkpoint was saved (set trainer.checkpoint_every to make runs resumable)")
        raise RuntimeError(f"the learner failed: {type(result).__name__}: {str(result)[:500]}\n"
                           f"MLflow run {run_id} holds what was logged; {hint}") from result
    logger.finish("FINISHED")
    return TrainResult(run_id, uri, final_model_dir, history, time.monotonic() - started, position,
                       run_url=run_page(uri, run_id), weight_sync=weight_sync)


def generator_weight_sync(cfg: Config, generators: list) -> dict[str, float]:
    """The generators' side of weight sync over the run: updates received per generator, and per update the
    milliseconds receiving (alongside sampling where staged) and sampling paused to load."""
    import ray

    if cfg.rollout.placement != "separate":
        return {}  # a colocated engine loads in the learner's step, which times it
    try:
        timings = ray.get([g.weight_timing.remote() for g in generators], timeout=30)
    except Exception as exc:  # a generator lost at the very end costs the figure, not the run
        log.warning("could not read the generators' weight-sync timing: %s", exc)
        return {}
    received, loaded = (sum(t[key] for t in timings) for key in ("received", "loaded"))
    if not received:
        return {}
    return {"generator_updates": received / len(timings),
            "generator_receive_ms": 1000 * sum(t["receive_s"] for t in timings) / received,
            "generator_pause_ms": 1000 * sum(t["load_s"] for t in timings) / max(loaded, 1),
            "generator_staged": float(all(t["staged"] for t in timings))}


def log_run_inputs(cfg: Config, problems, tokenizer, uri: str, run_id: str) -> None:
    """The training set and the held-out sets as the run's MLflow datasets (the UI's Datasets column)."""
    from mlflow import MlflowClient

    from .data.readers import looks_like_file, resolve_path
    from .tracking.context import log_datasets, problems_dataset

    def source(name: str) -> str:
        return str(resolve_path(name, cfg.task.data_root)) if looks_like_file(name) else f"apmpo_ray.tasks.{name}"

    datasets = [(problems_dataset(problems, name=cfg.task.dataset, source=source(cfg.task.dataset)), "training")]
    if cfg.eval.every_steps > 0:
        from .evaluation.benchmarks import load_benchmarks

        for name, bench in load_benchmarks(cfg.eval, cfg.task, tokenizer).items():
            datasets.append((problems_dataset(bench, name=f"eval/{name}", source=source(name)), "evaluation"))
    log_datasets(MlflowClient(uri), run_id, datasets)


def run_page(uri: str, run_id: str) -> str:
    from mlflow import MlflowClient

    from .tracking.context import runs_page_url

    return runs_page_url(uri, MlflowClient(uri).get_run(run_id).info.experiment_id, run_id)


def plan_resume(cfg: Config) -> dict | None:
    """The checkpoint to resume from, its state, and the MLflow run to continue (None for a fresh run)."""
    if not cfg.trainer.resume:
        return None
    from mlflow import MlflowClient

    from .learner import checkpoint

    directory = checkpoint.resolve_resume(cfg.trainer.resume, cfg.trainer.output_dir)
    state = checkpoint.read_state(directory)
    checkpoint.check_compatible(state, cfg.rollout.prompts_per_step, cfg.task.seed, cfg.task.dataset, directory)
    if state["step"] >= cfg.trainer.max_steps:
        raise ValueError(f"{directory} is at step {state['step']}: nothing left to do with "
                         f"trainer.max_steps={cfg.trainer.max_steps}")
    MlflowClient(cfg.tracking.tracking_uri).update_run(state["run_id"], status="RUNNING")
    return {"run_id": state["run_id"], "step": state["step"], "directory": str(directory)}


def _fit(trainer):
    try:
        return trainer.fit()
    except BaseException as err:  # reported by the driver thread with context
        return err


def _shutdown(coordinator, generators, pool) -> None:
    import ray

    try:
        ray.get(coordinator.stop.remote(), timeout=30)
    except Exception:
        pass
    for actor in [coordinator, *generators]:
        ray.kill(actor, no_restart=True)
    pool.shutdown()
