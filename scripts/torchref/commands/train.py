"""The `train` command: a run on a text file that prints the validation curve, from the command line's settings or
continuing a charlm checkpoint (--init-from: the hand-over, with Adam's moments, step, schedule and histories), on
one process or several under torchrun (DistributedDataParallel: --batch is the global batch, each process draws its
own windows, rank 0 validates and saves), and saved as a checkpoint charlm resumes (--save). The protocol's pieces
(windows, step, schedule, validation) are in training.py; the file format in checkpoint.py."""
import math
import os
import random
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from .. import memory
from ..checkpoint import read_checkpoint, save_charlm_checkpoint, with_aliases, writer
from ..errors import CommandError
from ..models import CELLS, make_model, with_cell
from ..settings import TRANSFORMER, problem
from ..text import fnv1a64, load_corpus
from ..training import check_settings, evaluate, learning_rate, make_optimizer, random_windows, training_step


def arguments(t):
    t.add_argument("--corpus", required=True)
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--eval-every", type=int, default=250)
    t.add_argument("--seconds", type=float, default=float("inf"), help="stop after this much training time")
    t.add_argument("--wall-seconds", type=float, default=float("inf"),
                   help="stop after this much wall-clock time, validations included (as charlm's `train 45m`)")
    t.add_argument("--cell", choices=CELLS, help="recurrent cell: lstm (default), gru (as nn.GRU) or rnn (nn.RNN, "
                   "tanh); with --init-from the checkpoint's")
    t.add_argument("--arch", choices=CELLS + (TRANSFORMER,),
                   help="the model: a recurrent cell (as --cell) or transformer (nanoGPT's GPT: --embed, --layers, "
                   "--heads, --context, --bias, --dropout); with --init-from the checkpoint's")
    t.add_argument("--heads", type=int, default=4, help="the transformer's attention heads (divide --embed)")
    t.add_argument("--context", type=int, default=256, help="the transformer's context (block size), at least --seq")
    t.add_argument("--bias", action="store_true", help="biases in the transformer's linear layers and LayerNorms")
    t.add_argument("--beta2", type=float, default=0.999, help="Adam's beta2 (nanoGPT's Shakespeare recipe: 0.99)")
    t.add_argument("--seed", type=int, default=1337)
    t.add_argument("--embed", type=int, default=64)
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--seq", type=int, default=100)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--clip", type=float, default=5.0)
    t.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up")
    t.add_argument("--decay", type=int, default=0, help="step at which a cosine decay reaches lr/10 (0: constant)")
    t.add_argument("--wd", type=float, default=0.0, help="AdamW weight decay on the weight matrices")
    t.add_argument("--init-from", help="continue a charlm checkpoint (weights, Adam, step, schedule, settings)")
    t.add_argument("--device", default="cpu")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--lowercase", action="store_true")
    t.add_argument("--ascii", action="store_true")
    t.add_argument("--save", help="write a charlm checkpoint (with the optimizer) that charlm resumes")


@dataclass
class Start:
    """What a run starts from: the command line's model and settings, or a checkpoint's."""
    cell: str               # lstm, gru, rnn or transformer
    config: dict            # embed, hidden, layers, lowercase, ascii, dropout (and "cell" as with_cell writes it);
                            # a transformer's: arch, embed, layers, heads, context, bias, dropout, lowercase, ascii
    settings: dict          # seq, batch, lr, clip, warmup, decay, weight_decay, val_fraction
    vocab: list = None      # the checkpoint's characters; None: the corpus's
    step: int = 0
    loss_history: list = field(default_factory=list)
    validation_history: list = field(default_factory=list)
    optim_meta: dict = field(default_factory=dict)   # the checkpoint's `optimizer` metadata (lr, betas, eps, step)
    passthrough: dict = field(default_factory=dict)  # sampling, settings, corpus: written back as they came
    state: dict = None      # the checkpoint's model tensors, by name
    exp_avg: dict = field(default_factory=dict)      # Adam's moments, by model tensor name
    exp_avg_sq: dict = field(default_factory=dict)


def command_line_settings(args):
    return {"seq": args.seq, "batch": args.batch, "lr": args.lr, "clip": args.clip, "warmup": args.warmup,
            "decay": args.decay, "weight_decay": args.wd}


def fresh_start(args):
    """A new model and settings, all from the command line."""
    cell = args.arch or args.cell or "lstm"
    if args.arch and args.cell and args.cell != args.arch:
        raise CommandError(f"--arch {args.arch} and --cell {args.cell} disagree: give one of them")
    if cell == TRANSFORMER:
        config = {"arch": TRANSFORMER, "embed": args.embed, "layers": args.layers, "heads": args.heads,
                  "context": args.context, "bias": args.bias, "dropout": args.dropout, "lowercase": args.lowercase,
                  "ascii": args.ascii}
        found = next(filter(None, (problem(key, config[key]) for key in ("embed", "layers", "heads", "context",
                                                                           "dropout"))), None)
        if not found and args.embed % args.heads:
            found = f"--heads {args.heads} does not divide --embed {args.embed}: each head takes an equal share"
        if found:
            raise CommandError(f"the command line: {found}")
    else:
        config = with_cell({"embed": args.embed, "hidden": args.hidden, "layers": args.layers,
                            "lowercase": args.lowercase, "ascii": args.ascii, "dropout": args.dropout}, cell)
    settings = dict(command_line_settings(args), val_fraction=0.1)
    check_settings(settings, "the command line")
    if not 0 <= args.beta2 < 1:
        raise CommandError(f"the command line: --beta2 must be from 0 up to but not including 1; got {args.beta2}")
    return Start(cell, config, settings, optim_meta={"beta2": args.beta2})


def continued_start(args, rank):
    """The run a charlm checkpoint holds (--init-from), checked as charlm checks it; a model-only file starts at step 0
    with the command line's settings and a fresh optimizer."""
    checkpoint = read_checkpoint(args.init_from)
    cell = checkpoint.cell
    if rank == 0:
        for option, given in (("--cell", args.cell), ("--arch", args.arch)):
            if given is not None and given != cell:
                print(f"note: {args.init_from} is a {cell} model: {option} {given} is ignored")
        for note in checkpoint.notes:
            print(f"note: {args.init_from}: {note}")
    saved, exp_avg = checkpoint.training, checkpoint.exp_avg
    if saved is None:
        # A model only (a PyTorch export, say): its weights, with the command line's training settings and a
        # fresh optimizer from step 0.
        saved = dict(command_line_settings(args), step=0)
        exp_avg = {}
        print(f"note: {args.init_from} holds a model only: training starts from its weights at step 0 with a "
              "fresh optimizer and the command line's settings")
    settings = {"seq": saved["seq"], "batch": saved["batch"], "lr": saved["lr"], "clip": saved["clip"],
                "warmup": saved.get("warmup", 0), "decay": saved.get("decay", 0),
                "weight_decay": saved.get("weight_decay", 0.0), "val_fraction": saved.get("val_fraction", 0.1)}
    if checkpoint.training is None:
        check_settings(settings, "the command line")
    return Start(cell, checkpoint.config, settings, checkpoint.vocab, saved["step"],
                 list(saved.get("loss_history", [])), list(saved.get("validation_history", [])),
                 checkpoint.optimizer or {}, checkpoint.passthrough, checkpoint.model, exp_avg, checkpoint.exp_avg_sq)


def restore(model, optimizer, start, device, source, rank):
    """The checkpoint's weights into `model`, and Adam's moments and step count, tensor by tensor, into the
    optimizer's own state."""
    model.load_state_dict(with_aliases(start.state))
    if start.optim_meta and start.exp_avg:
        for name, p in model.named_parameters():
            optimizer.state[p] = {"step": torch.tensor(float(start.optim_meta["step"])),
                                  "exp_avg": start.exp_avg[name].to(device).clone(),
                                  "exp_avg_sq": start.exp_avg_sq[name].to(device).clone()}
    elif rank == 0:
        print(f"note: {source} holds no optimizer state: Adam starts afresh")


def check_room(args, start, vocab_size, split, local_batch):
    """Refuses a run the corpus or the memory cannot hold, before any model is made: a run that takes steps needs a
    window of seq + 1 characters in each split, and the model, Adam and one process's batch must fit."""
    seq, config = start.settings["seq"], start.config
    lower_seq = "the checkpoint's seq (`set seq` in charlm, then save)" if args.init_from else "--seq"
    for name, count in split:
        if args.steps > 0 and count < seq + 1:
            raise CommandError(f"the {name} split of {args.corpus} has {count} characters; it needs at least seq+1 = "
                               f"{seq + 1}: lower {lower_seq} or use more text")
    if start.cell == TRANSFORMER:
        if seq > config["context"]:
            raise CommandError(f"seq {seq} is longer than the model's context {config['context']}: the transformer "
                               f"attends over at most {config['context']} characters; lower {lower_seq}"
                               + ("" if args.init_from else " or raise --context"))
        needed = memory.transformer_training_bytes(vocab_size, config["embed"], config["layers"], config["heads"],
                                                   config["context"], config["bias"], seq, local_batch,
                                                   config.get("dropout", 0.0))
        shape = f"transformer, E {config['embed']}, L {config['layers']}, heads {config['heads']}"
    else:
        needed = memory.training_bytes(start.cell, vocab_size, config["embed"], config["hidden"], config["layers"],
                                       seq, local_batch, config.get("dropout", 0.0))
        shape = f"{start.cell}, H {config['hidden']}, L {config['layers']}"
    memory.check(needed, f"training with seq {seq} and batch {local_batch} per process ({shape}, V {vocab_size})",
                 "lower the checkpoint's seq or batch in charlm" if args.init_from else "lower --seq or --batch")


def train(args):
    distributed = "LOCAL_RANK" in os.environ
    rank, world = 0, 1
    if distributed:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if args.device == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if args.device == "cuda" else args.device)

    start = continued_start(args, rank) if args.init_from else fresh_start(args)
    config, settings = start.config, start.settings
    if args.save and os.path.isdir(args.save):
        raise CommandError(f"--save '{args.save}' is a directory: name a file")
    if args.save:
        writer()  # a missing safetensors is said now, not after the run
    vocab, ids = load_corpus(args.corpus, config.get("lowercase", False), config.get("ascii", False))
    if start.vocab is not None and start.vocab != vocab:
        raise CommandError(f"{args.corpus} does not have the characters of {args.init_from}: "
                           "use the text it was trained on")
    config["vocab_size"] = len(vocab)
    split = int(len(ids) * (1.0 - settings["val_fraction"]))
    train_ids, val_ids = ids[:split], ids[split:]
    seq, batch = settings["seq"], settings["batch"]
    if batch % world:
        where = (f"the checkpoint's batch ({args.init_from}; `set batch` in charlm and save again)" if args.init_from
                 else "--batch")
        raise CommandError(f"the batch {batch} does not split evenly between {world} processes: change {where} "
                           "or --nproc_per_node")
    local_batch = batch // world
    check_room(args, start, len(vocab), (("training", len(train_ids)), ("validation", len(val_ids))), local_batch)

    torch.manual_seed(args.seed)  # the same initial model in every process
    model = make_model(start.cell, len(vocab), config).to(device)
    optim_meta = start.optim_meta
    betas = (optim_meta.get("beta1", 0.9), optim_meta.get("beta2", 0.999))
    optimizer = make_optimizer(model, settings["lr"], settings["weight_decay"], betas, optim_meta.get("eps", 1e-8))
    if args.init_from:
        restore(model, optimizer, start, device, args.init_from, rank)
    core = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model)
    # Each process draws its own windows and dropout masks; a continued run does not redraw a fresh run's.
    torch.manual_seed(args.seed + rank + 7919 * start.step)
    if rank == 0:
        print(f"corpus {args.corpus}: {len(ids)} characters, V {len(vocab)}, {start.cell}; torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, device {device}" + (f", {world} processes" if distributed else "")
              + (f"; from {args.init_from} at step {start.step}" if args.init_from else ""))
        print("step  train_loss  val_loss  val_bpc  elapsed_s  train_tokens_per_s")
    loss_history, validation_history = start.loss_history, start.validation_history
    training_seconds = 0.0
    recent, recent_count = 0.0, 0
    began = time.time()
    step = start.step
    rate = optim_meta.get("lr", settings["lr"])  # the learning rate of the latest step, as charlm's optimizer keeps it
    for done in range(1, args.steps + 1):
        step = start.step + done
        step_start = time.time()
        rate = learning_rate(settings, step)
        for group in optimizer.param_groups:
            group["lr"] = rate
        x, y = (t.to(device) for t in random_windows(train_ids, seq, local_batch))
        loss, _ = training_step(model, optimizer, x, y, settings["clip"] if settings["clip"] > 0 else None)
        mean_loss = loss.detach()
        if distributed:
            dist.all_reduce(mean_loss)
            mean_loss /= world
        loss_history.append(mean_loss.item())
        recent += loss_history[-1]
        recent_count += 1
        training_seconds += time.time() - step_start
        # Rank 0's clock decides, so every process stops after the same step.
        out_of_time = torch.tensor(int(training_seconds >= args.seconds or time.time() - began >= args.wall_seconds))
        if distributed:
            dist.broadcast(out_of_time, 0)
        out_of_time = bool(out_of_time.item())
        if rank == 0 and (done % args.eval_every == 0 or done == args.steps or out_of_time):
            val = evaluate(core, val_ids, seq, batch, device)
            validation_history.append([step, val])
            tokens = done * seq * batch / training_seconds
            print(f"{step:4d}  {recent / recent_count:10.4f}  {val:8.4f}  {val / math.log(2):7.4f}  "
                  f"{time.time() - began:9.1f}  {tokens:18.0f}", flush=True)
            recent, recent_count = 0.0, 0
        if out_of_time:
            break
    if rank == 0 and args.save:
        training = training_metadata(args, settings, step, len(train_ids), loss_history, validation_history)
        passthrough = start.passthrough
        if passthrough.get("corpus") is None:
            passthrough["corpus"] = {"characters": len(ids), "fnv1a64": format(fnv1a64(ids), "x"),
                                     "name": os.path.basename(args.corpus)}
        group = optimizer.param_groups[0]
        optimizer_meta = {"lr": rate, "beta1": group["betas"][0], "beta2": group["betas"][1], "eps": group["eps"],
                          "weight_decay": settings["weight_decay"]}
        save_charlm_checkpoint(args.save, core, optimizer, vocab, config, training, optimizer_meta, passthrough)
        print(f"saved {args.save} at step {step}")
    if distributed:
        dist.barrier()  # rank 0 may still be saving: everyone leaves together
        dist.destroy_process_group()


def training_metadata(args, settings, step, train_count, loss_history, validation_history):
    """The `training` metadata charlm resumes from: the settings, where the run is, and the histories."""
    seq, batch = settings["seq"], settings["batch"]
    generator = random.Random(args.seed * 1_000_003 + step)
    return {"seq": seq, "batch": batch, "lr": settings["lr"], "clip": settings["clip"],
            "warmup": settings["warmup"], "decay": settings["decay"], "weight_decay": settings["weight_decay"],
            "val_fraction": settings["val_fraction"], "step": step,
            "epoch": step * seq * batch / max(train_count, 1),
            # charlm's batch generator (four xoshiro words): a fresh state, so charlm draws new windows.
            "generator": "".join(f"{generator.getrandbits(64) | 1:016x}" for _ in range(4)),
            "loss_history": loss_history, "validation_history": validation_history}
