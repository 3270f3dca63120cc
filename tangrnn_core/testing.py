"""A conformance kit for architecture plugins: call :func:`check_architecture` from your own pytest.

    from tangrnn_core.testing import check_architecture
    from tangrnn_mynet import MyNet

    def test_mynet_follows_the_plugin_api(tmp_path):
        check_architecture(MyNet, options={"hidden_size": 16}, tmp_path=tmp_path)

It builds the network on a tiny vocabulary of real poems and checks every rule of the plugin API that the core
relies on; the first broken rule raises an :class:`AssertionError` whose message starts with the rule's name,
e.g. ``[step == forward] ...``. It takes a few seconds on two CPU cores with small options.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tangrnn_core.api import CAUSAL, CONDITIONAL, INFILL, Architecture, Batch, State, TokenSpec, opted_in_output_layer
from tangrnn_core.data.forms import Form, classify
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.errors import TangrnnError
from tangrnn_core.registry import PluginSource, check_architecture_class, resolve_architecture

#: Real Tang poems (simplified characters) from which the kit builds its vocabulary, batches and corpus.
POEMS: tuple[str, ...] = (
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
    "千山鸟飞绝，万径人踪灭。孤舟蓑笠翁，独钓寒江雪。",
    "空山不见人，但闻人语响。返景入深林，复照青苔上。",
    "红豆生南国，春来发几枝。愿君多采撷，此物最相思。",
    "独坐幽篁里，弹琴复长啸。深林人不知，明月来相照。",
    "移舟泊烟渚，日暮客愁新。野旷天低树，江清月近人。",
    "松下问童子，言师采药去。只在此山中，云深不知处。",
    "向晚意不适，驱车登古原。夕阳无限好，只是近黄昏。",
    "绿蚁新醅酒，红泥小火炉。晚来天欲雪，能饮一杯无。",
    "功盖三分国，名成八阵图。江流石不转，遗恨失吞吴。",
    "北斗七星高，哥舒夜带刀。至今窥牧马，不敢过临洮。",
    "君自故乡来，应知故乡事。来日绮窗前，寒梅著花未。",
    "山中相送罢，日暮掩柴扉。春草明年绿，王孙归不归。",
    "锄禾日当午，汗滴禾下土。谁知盘中餐，粒粒皆辛苦。",
    "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。",
    "故人西辞黄鹤楼，烟花三月下扬州。孤帆远影碧空尽，唯见长江天际流。",
    "日照香炉生紫烟，遥看瀑布挂前川。飞流直下三千尺，疑是银河落九天。",
    "独在异乡为异客，每逢佳节倍思亲。遥知兄弟登高处，遍插茱萸少一人。",
    "渭城朝雨浥轻尘，客舍青青柳色新。劝君更尽一杯酒，西出阳关无故人。",
    "月落乌啼霜满天，江枫渔火对愁眠。姑苏城外寒山寺，夜半钟声到客船。",
    "两个黄鹂鸣翠柳，一行白鹭上青天。窗含西岭千秋雪，门泊东吴万里船。",
    "秦时明月汉时关，万里长征人未还。但使龙城飞将在，不教胡马度阴山。",
    "黄河远上白云间，一片孤城万仞山。羌笛何须怨杨柳，春风不度玉门关。",
    "远上寒山石径斜，白云生处有人家。停车坐爱枫林晚，霜叶红于二月花。",
    "清明时节雨纷纷，路上行人欲断魂。借问酒家何处有，牧童遥指杏花村。",
    "烟笼寒水月笼沙，夜泊秦淮近酒家。商女不知亡国恨，隔江犹唱后庭花。",
    "少小离家老大回，乡音无改鬓毛衰。儿童相见不相识，笑问客从何处来。",
    "葡萄美酒夜光杯，欲饮琵琶马上催。醉卧沙场君莫笑，古来征战几人回。",
    "国破山河在，城春草木深。感时花溅泪，恨别鸟惊心。烽火连三月，家书抵万金。白头搔更短，浑欲不胜簪。",
    "空山新雨后，天气晚来秋。明月松间照，清泉石上流。竹喧归浣女，莲动下渔舟。随意春芳歇，王孙自可留。",
    "好雨知时节，当春乃发生。随风潜入夜，润物细无声。野径云俱黑，江船火独明。晓看红湿处，花重锦官城。",
    "离离原上草，一岁一枯荣。野火烧不尽，春风吹又生。远芳侵古道，晴翠接荒城。又送王孙去，萋萋满别情。",
    "城阙辅三秦，风烟望五津。与君离别意，同是宦游人。海内存知己，天涯若比邻。无为在歧路，儿女共沾巾。",
)

#: Titles of some of :data:`POEMS` (by index), read by ``conditional`` networks; the others have none.
TITLES: dict[int, str] = {0: "静夜思", 1: "登鹳雀楼", 2: "春晓", 16: "早发白帝城", 30: "春望"}

#: Tolerance of the comparisons between ``forward``, ``step``, ``prefill`` and a reordered state.
ATOL = 1e-4
#: Rows per chunk of the chunked loss in ``[output_layer]`` and ``[train]``: fewer than a batch has, so that
#: several chunks (the last one short) are exercised.
LOSS_CHUNK_SIZE = 16


@contextmanager
def _rule(name: str) -> Iterator[None]:
    """Turns any failure inside the block into an AssertionError that names the rule."""
    try:
        yield
    except AssertionError as error:
        message = str(error)
        raise AssertionError(message if message.startswith("[") else f"[{name}] {message}") from error
    except Exception as error:  # a plugin's exception is a broken rule, not a crash of the kit
        raise AssertionError(f"[{name}] raised {type(error).__name__}: {error}") from error


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _resolve(cls: type | str) -> tuple[type[Architecture], str]:
    """The class and a class path (or plugin name) by which ``PoetryModel`` and checkpoints can find it."""
    if isinstance(cls, str):
        return resolve_architecture(cls), cls
    name = _class_path(cls) if isinstance(cls, type) else repr(cls)
    checked = check_architecture_class(cls, PluginSource(name, name, "the package under test", ""))
    return checked, name


def _batch(vocabulary: Vocabulary, poems: list[str], titles: list[str] | None = None) -> Batch:
    """A batch as the data module makes it, titles (``Batch.context``) included."""
    from tangrnn_core.data.datamodule import PadCollate

    titles = titles or [""] * len(poems)
    encode = lambda text: torch.tensor(vocabulary.encode(text), dtype=torch.long)  # noqa: E731
    return PadCollate(vocabulary)([(encode(poem), encode(title)) for poem, title in zip(poems, titles)])


def _context(batch: Batch, rows: Tensor | None = None) -> Batch:
    """The ``context`` argument of ``initial_state`` for the titles of ``batch`` (or of its ``rows``)."""
    context, lengths = batch.context, batch.context_lengths
    if rows is not None:
        context, lengths = context[rows], lengths[rows]
    empty = torch.empty((context.shape[0], 0), dtype=torch.long)
    return Batch(empty, empty, torch.zeros(context.shape[0], dtype=torch.long), context, lengths)


def _close(actual: Tensor, expected: Tensor, what: str, relative: bool = False) -> None:
    """Raises unless ``actual`` is ``expected`` within :data:`ATOL` (times its largest magnitude if ``relative``)."""
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {tuple(actual.shape)} where {tuple(expected.shape)} was expected")
    difference = (actual.float() - expected.float()).abs().max().item() if actual.numel() else 0.0
    tolerance = ATOL
    if relative and expected.numel():  # sums over a batch: fp32 round-off grows with their size
        tolerance = ATOL * max(1.0, expected.float().abs().max().item())
    if not difference <= tolerance:  # also catches NaN
        raise AssertionError(f"{what}: they differ by up to {difference:.3g} (tolerance {tolerance:.3g})")


def _logits_of_step(result: Any, rows: int, vocab_size: int, where: str) -> tuple[Tensor, State]:
    if not (isinstance(result, tuple) and len(result) == 2):
        raise AssertionError(f"{where} must return (logits, state), got {type(result).__name__}")
    logits, state = result
    if not isinstance(logits, Tensor) or tuple(logits.shape) != (rows, vocab_size):
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise AssertionError(
            f"{where} must return logits of shape (batch, vocab_size) = {(rows, vocab_size)}, got {shape}"
        )
    return logits, state


def check_architecture(
    cls: type[Architecture] | str,
    *,
    options: dict[str, Any] | None = None,
    steps: int = 3,
    tmp_path: str | Path | None = None,
) -> None:
    """Checks that an architecture follows the plugin API, from its class to a constrained poem.

    The rules, in order (the name in brackets opens the message of the first one broken):

    - ``[static]`` the class is an ``Architecture`` subclass declaring a supported ``plugin_api`` (what the
      registry checks before it builds anything);
    - ``[build]`` it builds from a ``TokenSpec`` and ``options`` through the core's option parser;
    - ``[forward]`` ``forward(Batch)`` returns finite float logits of shape ``(batch, time, vocab_size)``;
    - ``[output_layer]`` (networks that opt in: ``opted_in_output_layer`` is not ``None``) it is an ``nn.Linear`` of the
      network onto ``vocab_size`` outputs, ``features(batch)`` has shape ``(batch, time, in_features)``, and in
      eval mode ``forward(batch)`` equals ``output_layer()(features(batch))``, with the same gradients through
      the chunked loss as through ``forward``'s logits;
    - ``[title]`` (``conditional`` networks) another title changes ``forward``'s logits: the network reads it;
    - ``[step == forward]`` in eval mode, ``step`` from ``initial_state`` one character at a time gives the
      logits of ``forward`` at every real position, and ``prefill`` gives those after its last character;
    - ``[reorder_state]`` stepping on from ``reorder_state(state, index)`` equals stepping the selected rows
      (with rows dropped, repeated and permuted);
    - ``[train]`` ``PoetryModel`` trains it ``steps`` steps with a Lightning ``Trainer`` on a tiny corpus, with
      finite loss (through the chunked loss, :data:`LOSS_CHUNK_SIZE` rows a chunk, when it opts in);
    - ``[checkpoint]`` a checkpoint loads with ``torch.load(weights_only=True)`` and
      ``PoetryModel.load_from_checkpoint(..., weights_only=True)`` into a network with identical logits;
    - ``[decode]`` ``write_poems`` with ``PoemRequest(form="五绝", num_poems=4)`` writes 4 poems of that form
      (left to right, or by mask-predict for ``infill`` networks), and a template is filled keeping its
      characters;
    - ``[quantize]`` the same 五绝 are written with the network's int8 copy (on CPUs with torch's int8 kernels,
      what ``generate --quantize auto`` picks there) and its bf16 copy: code that reads a layer's ``weight``
      (dynamic int8 makes ``nn.Linear.weight`` a method) or assumes fp32 breaks here, not in a user's hands.

    The step rules apply to networks with the ``causal`` capability only; ``infill`` networks are given masked
    batches (as the core trains them) in ``[forward]``.

    Args:
        cls: the architecture class, a class path (``mypackage.MyNet``) or an installed plugin's name. A class
            must be importable by its module and name (defined at module level), because checkpoints find
            their network by that path.
        options: the architecture's options (``model.architecture_options``); keep them small so the checks
            run in seconds. ``None`` uses the class defaults.
        steps: training steps of the ``[train]`` rule.
        tmp_path: a folder for the corpus, the cache and the checkpoint (pytest's ``tmp_path``); ``None`` uses
            a temporary folder removed afterwards.

    Raises:
        AssertionError: a broken rule; the message names it and says what was found.
    """
    if tmp_path is None:
        with tempfile.TemporaryDirectory(prefix="tangrnn-kit-") as folder:
            return check_architecture(cls, options=options, steps=steps, tmp_path=folder)
    tmp = Path(tmp_path)
    tmp.mkdir(parents=True, exist_ok=True)

    with _rule("static"):
        try:
            arch_cls, path = _resolve(cls)
        except TangrnnError as error:
            raise AssertionError(str(error)) from error

    vocabulary = Vocabulary.build([*POEMS, *TITLES.values()])
    tokens = vocabulary.token_spec(LINE_END_MARKS)
    with _rule("build"):
        net = _build(path, options, tokens)
        if not isinstance(net, arch_cls):
            raise AssertionError(f"building {path} gave a {type(net).__name__}")
    torch.manual_seed(0)
    # Different lengths (padding at the end of the shorter rows) and different openings.
    batch = _batch(vocabulary, [POEMS[16], POEMS[0], POEMS[30]], [TITLES[16], TITLES[0], TITLES[30]])
    causal = CAUSAL in arch_cls.capabilities
    if not causal and INFILL in arch_cls.capabilities:
        from tangrnn_core.objectives import masked_batch

        batch = masked_batch(batch, tokens.mask_id, tokens.pad_id, tokens.eos_id, torch.Generator().manual_seed(0))
    rows, width = batch.inputs.shape

    with _rule("forward"):
        net.train()
        logits = net(batch)
        if not isinstance(logits, Tensor):
            raise AssertionError(f"forward() must return a tensor, got {type(logits).__name__}")
        expected = (rows, width, tokens.vocab_size)
        if tuple(logits.shape) != expected:
            raise AssertionError(
                f"forward() must return logits of shape (batch, time, vocab_size) = {expected}, "
                f"got {tuple(logits.shape)}"
            )
        if not logits.is_floating_point():
            raise AssertionError(f"forward() must return float logits, got {logits.dtype}")
        if not torch.isfinite(logits).all():
            raise AssertionError("forward() returned NaN or infinite logits")

    net.eval()
    with _rule("output_layer"):
        layer = opted_in_output_layer(net)  # as the core decides it
        if layer is not None:
            _check_output_layer(net, layer, batch, tokens)
    if CONDITIONAL in arch_cls.capabilities:
        with _rule("title"), torch.no_grad():
            other = Batch(
                batch.inputs, batch.targets, batch.lengths, batch.context.flip(0), batch.context_lengths.flip(0)
            )
            if torch.allclose(net(batch), net(other), atol=ATOL):
                raise AssertionError("forward() gives the same logits whatever the titles in batch.context")
    if causal:
        with _rule("step == forward"), torch.no_grad():
            _check_step(net, batch, tokens.vocab_size)
        with _rule("reorder_state"), torch.no_grad():
            _check_reorder(net, batch, tokens.vocab_size)
    with _rule("train"):
        model, trainer, datamodule = _train(path, options, steps, tmp)
    with _rule("checkpoint"):
        _check_checkpoint(model, trainer, datamodule, tmp)
    with _rule("decode"):
        _check_decode(net, vocabulary)
    with _rule("quantize"):
        _check_quantized_decode(net, vocabulary)


def _build(path: str, options: dict[str, Any] | None, tokens: TokenSpec) -> Architecture:
    from tangrnn_core.network import build_architecture

    return build_architecture(path, options, tokens)


def _check_output_layer(net: Architecture, layer: Any, batch: Batch, tokens: TokenSpec) -> None:
    """The opt-in of the chunked loss: ``forward == output_layer()(features)``, in values and in gradients."""
    import torch.nn.functional as F

    from tangrnn_core.losses import chunked_cross_entropy

    if not isinstance(layer, nn.Linear) or layer.out_features != tokens.vocab_size:
        raise AssertionError(
            f"output_layer() must return an nn.Linear with vocab_size = {tokens.vocab_size} outputs (or None), "
            f"got {layer!r}"
        )
    if not any(parameter is layer.weight for parameter in net.parameters()):
        raise AssertionError("output_layer() returns a layer that is not part of the network: it would not be trained")
    rows, width = batch.inputs.shape
    expected = (rows, width, layer.in_features)
    with torch.no_grad():
        features = net.features(batch)
        if not isinstance(features, Tensor) or tuple(features.shape) != expected:
            shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise AssertionError(f"features() must return (batch, time, in_features) = {expected}, got {shape}")
        _close(
            layer(features),
            net(batch),
            "forward(batch) differs from output_layer()(features(batch)) (in eval mode); the chunked loss would "
            "train another network than forward() scores",
        )
    # The same gradients through both paths: features() must keep the graph that forward() has.
    targets = batch.targets.reshape(-1)
    parameters = [parameter for parameter in net.parameters() if parameter.requires_grad]
    logits = net(batch)
    full = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets, ignore_index=tokens.pad_id, reduction="sum")
    expected_grads = torch.autograd.grad(full, parameters, allow_unused=True)
    features = net.features(batch)
    chunked = chunked_cross_entropy(
        features.reshape(-1, features.shape[-1]),
        layer.weight,
        layer.bias,
        targets,
        ignore_index=tokens.pad_id,
        chunk_size=LOSS_CHUNK_SIZE,
    )
    _close(chunked, full, "the chunked loss over features() differs from the loss over forward()'s logits", True)
    if not chunked.requires_grad:
        raise AssertionError("features() returns a tensor without gradient: the network would not be trained")
    grads = torch.autograd.grad(chunked, parameters, allow_unused=True)
    for (name, _), actual, wanted in zip(
        [item for item in net.named_parameters() if item[1].requires_grad], grads, expected_grads
    ):
        if (actual is None) != (wanted is None):
            raise AssertionError(
                f"through features() {name} gets {'no' if actual is None else 'a'} gradient, through forward() "
                f"{'no' if wanted is None else 'one'}; features() must keep the graph that forward() has"
            )
        if actual is not None:
            _close(
                actual, wanted, f"the gradient of {name} through features() differs from that through forward()", True
            )


def _check_step(net: Architecture, batch: Batch, vocab_size: int) -> None:
    full = net(batch)
    rows = batch.size
    conditional = CONDITIONAL in net.capabilities
    context = _context(batch) if conditional else None
    state = net.initial_state(rows, context)
    for position in range(batch.inputs.shape[1]):
        logits, state = _logits_of_step(net.step(batch.inputs[:, position], state), rows, vocab_size, "step()")
        real = batch.lengths > position
        _close(
            logits[real],
            full[real, position],
            f"step() at position {position} from initial_state() does not give forward()'s logits (in eval "
            "mode); the state must carry everything the network has read",
        )
    length = int(batch.lengths.min())
    for prefix in (1, length):
        logits, _ = _logits_of_step(
            net.prefill(batch.inputs[:, :prefix], net.initial_state(rows, context)), rows, vocab_size, "prefill()"
        )
        _close(logits, full[:, prefix - 1], f"prefill() of {prefix} characters does not give forward()'s logits")


def _check_reorder(net: Architecture, batch: Batch, vocab_size: int) -> None:
    rows = batch.size
    read = 4
    state = net.initial_state(rows, _context(batch) if CONDITIONAL in net.capabilities else None)
    for position in range(read):
        _, state = net.step(batch.inputs[:, position], state)
    for order in ([2, 0, 1], [2, 0, 0, 1], [1, 2]):
        index = torch.tensor(order, dtype=torch.long)
        moved = net.reorder_state(state, index)
        kept = state
        for position in range(read, read + 2):
            tokens = batch.inputs[:, position]
            expected, kept = _logits_of_step(net.step(tokens, kept), rows, vocab_size, "step()")
            try:
                result = net.step(tokens[index], moved)
            except Exception as error:
                raise AssertionError(
                    f"step() failed on the state reorder_state() returned for index {order}: "
                    f"{type(error).__name__}: {error}; reorder_state must select those rows of every state tensor "
                    "(along state_batch_dim)"
                ) from error
            actual, moved = _logits_of_step(result, len(order), vocab_size, "step() after reorder_state()")
            _close(
                actual,
                expected[index],
                f"stepping on from reorder_state(state, {order}) does not equal stepping rows {order} of the "
                "original state; reorder_state must select (and repeat) rows along state_batch_dim",
            )


def _train(path: str, options: dict[str, Any] | None, steps: int, tmp: Path):
    from tangrnn_core.data.datamodule import PoetryDataModule
    from tangrnn_core.module import PoetryModel
    from tangrnn_core.trainer import TangrnnTrainer

    corpus = tmp / "kit-corpus.txt"
    corpus.write_text("\n".join(POEMS) + "\n", encoding="utf-8")
    datamodule = PoetryDataModule(
        corpus=str(corpus),
        min_count=1,
        val_fraction=0.0,
        test_fraction=0.0,
        batch_size=4,
        cache_dir=str(tmp / "kit-cache"),
    )
    model = PoetryModel(
        vocab_size=datamodule.vocab_size,
        line_end_ids=datamodule.line_end_ids,
        architecture=path,
        architecture_options=options,
        loss_chunk_size=LOSS_CHUNK_SIZE,  # networks that do not opt in ignore it
    )
    trainer = TangrnnTrainer(  # Lightning's Trainer, loading checkpoints with weights_only=True
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp / "kit-runs"),
    )
    trainer.fit(model, datamodule=datamodule)
    if trainer.global_step != steps:
        raise AssertionError(f"training stopped after {trainer.global_step} of {steps} steps")
    loss = trainer.callback_metrics.get("train/loss")
    if loss is None or not math.isfinite(float(loss)):
        raise AssertionError(f"the training loss is {loss}, not a finite number")
    return model, trainer, datamodule


def _check_checkpoint(model, trainer, datamodule, tmp: Path) -> None:
    from tangrnn_core.module import PoetryModel

    path = tmp / "kit.ckpt"
    trainer.save_checkpoint(path)  # a full checkpoint (optimizer and loops too), like last.ckpt
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise AssertionError(
            f"the checkpoint does not load with torch.load(weights_only=True): {error}; keep options and state to "
            "plain data (numbers, strings, lists, dicts) and tensors"
        ) from error
    restored = PoetryModel.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    if type(restored.net) is not type(model.net):
        raise AssertionError(
            f"the checkpoint rebuilt a {type(restored.net).__name__}, not a {type(model.net).__name__}"
        )
    batch = _batch(datamodule.vocabulary, list(POEMS[:3]), [TITLES[0], TITLES[1], TITLES[2]])
    model.net.eval()
    restored.net.eval()
    with torch.no_grad():
        _close(restored.net(batch), model.net(batch), "the reloaded network's logits differ from the saved one's")


def _check_decode(net: Architecture, vocabulary: Vocabulary) -> None:
    from tangrnn_core.decoding.request import PoemRequest
    from tangrnn_core.decoding.write import write_poems

    net.eval()
    poems = write_poems(net, vocabulary, PoemRequest(form="五绝", num_poems=4, seed=0))
    if len(poems) != 4:
        raise AssertionError(f"write_poems() asked for 4 poems of form 五绝 returned {len(poems)}")
    for poem in poems:
        if classify(poem) is not Form.WUJUE:
            raise AssertionError(f"write_poems() asked for form 五绝 wrote {poem!r}, of form {classify(poem)}")
    template = "白日依山尽，黄河入海流。欲穷□□□，更上一层楼。"
    for poem in write_poems(net, vocabulary, PoemRequest(template=template, num_poems=2, seed=0)):
        kept = all(slot == "□" or slot == char for slot, char in zip(template, poem))
        if len(poem) != len(template) or not kept:
            raise AssertionError(f"write_poems() asked to fill {template} wrote {poem!r}")


def _check_quantized_decode(net: Architecture, vocabulary: Vocabulary) -> None:
    from tangrnn_core.decoding.quantize import bf16_for_decoding, has_int8_kernels, int8_for_decoding
    from tangrnn_core.decoding.request import PoemRequest
    from tangrnn_core.decoding.write import write_poems

    copies = {"bf16": bf16_for_decoding}
    if next(net.parameters()).device.type == "cpu" and has_int8_kernels():
        copies["int8"] = int8_for_decoding
    for name, quantize in copies.items():
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # bf16 without bf16 units: emulated, and it says so
                light = quantize(net)
            poems = write_poems(light, vocabulary, PoemRequest(form="五绝", num_poems=2, seed=0))
        except Exception as error:
            raise AssertionError(
                f"decoding with {name} weights (generate --quantize {name}) failed: {type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}; after int8 quantization nn.Linear.weight is a "
                "method, so take devices and dtypes from a parameter (next(self.parameters())) or an input, "
                "never from a layer's .weight"
            ) from error
        wrong = [poem for poem in poems if classify(poem) is not Form.WUJUE]
        if len(poems) != 2 or wrong:
            raise AssertionError(f"with {name} weights, write_poems() asked for 2 poems of form 五绝 wrote {poems!r}")


__all__ = ["check_architecture", "POEMS", "TITLES", "ATOL", "LOSS_CHUNK_SIZE"]
