"""HierCode: classes as compositions of learned prototypes of their radical tree, zero-shot capable.

Every character is coded by the slots of its KanjiVG component tree (see
:mod:`kanji_lab.data.radicals`): the structure at each inner node up to ``depth`` levels below
the root (``S0.1:⿰`` = the second child of the first child is split left-right), the component at
each node (``C1:月`` = the second top-level part is 月), and each component regardless of place
(``c:月``). The code of a class is this multi-hot set; its embedding is the sum of one learned
prototype per slot, L2-normalised. An image is embedded by the CNN encoder and scored against
every class embedding by cosine similarity times a learned scale, so there is no weight row per
class: the classifier grows with the number of distinct slots, and a character never seen in
training is scored as soon as its tree is known (:meth:`HierCode.extend_labels`), from the slots
whose prototypes training learned. Characters that KanjiVG cannot split (一, kana) are a single
component of their own; characters whose codes collide within the label set get one more slot of
their own.

The codes come from the installed KanjiVG when a model is built; a model file stores them
(:meth:`HierCode.stored`) and is rebuilt from them, so it loads with the slots it was trained with
on any machine.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kanji_lab.data import radicals
from kanji_lab.models.cnn import ChannelAttentionCNN
from kanji_lab.models.registry import register


def code_slots(char: str, depth: int = 2, max_children: int = 4) -> list[str]:
    """The slots of ``char``'s hierarchical code (see the module docstring), first-seen order.

    Child indices from ``max_children - 1`` on share one slot position.
    """
    tree = radicals.decompose(char)
    if tree.is_leaf():
        return [f"S:{radicals.ATOMIC}", f"c:{char}"]
    slots = []
    for path, node in tree.walk():
        if len(path) > depth:
            continue
        where = ".".join(str(min(i, max_children - 1)) for i in path)
        if node.children:
            slots.append(f"S{where}:{node.structure}")
        if path and node.element:
            slots.append(f"C{where}:{node.element}")
    slots += [f"c:{name}" for name in radicals.components(char)]
    return list(dict.fromkeys(slots))


def label_codes(labels: list[str], depth: int, max_children: int) -> dict[str, list[str]]:
    """The code of each label; labels whose codes collide get one more slot of their own."""
    codes = {char: code_slots(char, depth, max_children) for char in labels}
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for char, slots in codes.items():
        groups[tuple(sorted(slots))].append(char)
    for group in groups.values():
        if len(group) > 1:
            for char in group:
                codes[char] = [*codes[char], f"self:{char}"]
    return codes


def pack_codes(codes: list[list[str]], slot_index: dict[str, int]) -> Tensor:
    """``(classes, max slots)`` int32 slot indices, -1 padded; unknown slots are left out."""
    rows = [[slot_index[s] for s in slots if s in slot_index] for slots in codes]
    packed = torch.full((len(rows), max([1, *map(len, rows)])), -1, dtype=torch.int32)
    for i, row in enumerate(rows):
        packed[i, : len(row)] = torch.tensor(row, dtype=torch.int32)
    return packed


class HierCode(nn.Module):
    """Image encoder + hierarchical codebook; ``forward(x)`` -> cosine logits over the labels.

    ``width``, ``blocks``, ``features``, ``dropout``, ``se``, ``pool``: the CNN encoder (as in
    ``model=cnn``), whose last layer projects to the ``dim``-sized embedding; ``depth`` and
    ``max_children``: how much of each tree becomes positional slots; ``scale``: initial logit
    scale (learned); ``codes``: each label's slots, as :meth:`stored` gives them (None: from the
    installed KanjiVG).
    """

    def __init__(
        self,
        labels: list[str],
        dim: int = 128,
        depth: int = 2,
        max_children: int = 4,
        scale: float = 32.0,
        width: int = 32,
        blocks: tuple[int, ...] = (1, 2, 2),
        features: int = 256,
        dropout: float = 0.2,
        se: bool = True,
        pool: int = 32,
        codes: list[list[str]] | None = None,
    ) -> None:
        super().__init__()
        self.depth, self.max_children = depth, max_children
        self.labels = list(labels)
        if codes is None:
            codes = label_codes(self.labels, depth, max_children)
        elif len(codes) != len(self.labels):
            raise ValueError(f"{len(codes)} stored codes for {len(self.labels)} labels")
        else:
            codes = dict(zip(self.labels, codes, strict=True))
        self.slots = sorted({s for slots in codes.values() for s in slots})
        self.slot_index = {s: i for i, s in enumerate(self.slots)}
        self.encoder = ChannelAttentionCNN(dim, width, tuple(blocks), features, dropout, se, pool)
        self.prototypes = nn.Parameter(torch.randn(len(self.slots), dim) / math.sqrt(dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(scale)))
        self.register_buffer("codes", pack_codes([codes[c] for c in self.labels], self.slot_index))
        # eval mode: the class embeddings, composed once (see train()); None while training
        self.register_buffer("class_cache", None, persistent=False)
        self.register_load_state_dict_post_hook(_refresh_after_load)

    def slot_prototypes(self) -> Tensor:
        """``(slots, dim)``: one prototype per slot."""
        return self.prototypes

    def class_embeddings(self) -> Tensor:
        """``(classes, dim)`` unit vectors: the sum of each class's slot prototypes."""
        codes = self.codes.long()
        prototypes = self.slot_prototypes()
        emb = torch.zeros(codes.shape[0], prototypes.shape[1], device=codes.device)
        for k in range(codes.shape[1]):  # one gather per slot column: no (C, K, dim) tensor
            column = codes[:, k]
            present = (column >= 0).unsqueeze(1).to(emb.dtype)
            emb = emb + present * prototypes[column.clamp(min=0)]
        return unit(emb)

    def embed(self, x: Tensor) -> Tensor:
        """``(B, dim)`` unit image embeddings."""
        return unit(self.encoder(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.score(self.embed(x))

    def score(self, image: Tensor) -> Tensor:
        """Cosine logits of unit image embeddings against every class."""
        return self.scale() * image @ self.classes().t()

    def classes(self) -> Tensor:
        """The class embeddings: composed anew in training (so the prototypes learn), the cache
        of the last switch to eval mode otherwise. The training flag decides, not the cache:
        Lightning restores modes after validation (and its model summary) by setting
        ``training`` directly, without calling :meth:`train`."""
        if self.training or self.class_cache is None:
            return self.class_embeddings()
        return self.class_cache

    def scale(self) -> Tensor:
        return self.logit_scale.clamp(max=math.log(100.0)).exp()

    def stored(self) -> dict[str, list[list[str]]]:
        """What a model file keeps besides the weights and the config: each label's slots."""
        index = self.codes.tolist()
        return {"codes": [[self.slots[k] for k in row if k >= 0] for row in index]}

    def train(self, mode: bool = True) -> HierCode:
        """Training composes the class embeddings at every step; eval mode composes them once
        here, so inference (and an exported graph) costs one matrix product like a CNN head."""
        super().train(mode)
        self.refresh()
        return self

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompose the eval-mode class embeddings (after loading weights or adding labels)."""
        self.class_cache = None if self.training else self.class_embeddings()

    def code_stats(self) -> dict[str, int]:
        """How much of the codebook is shared. A slot that only one class uses is a weight row of
        that class under another name (as in a CNN's head); so are the slots added for colliding
        codes (``self:``) and the own component of a character KanjiVG cannot split."""
        codes = self.codes.long()
        users = torch.bincount(codes[codes >= 0], minlength=len(self.slots))
        single = users == 1
        own = (codes >= 0) & single[codes.clamp(min=0)]
        atomic = f"S:{radicals.ATOMIC}"
        return {
            "classes": len(self.labels),
            "slots": len(self.slots),
            "single_class_slots": int(single.sum()),
            "classes_with_a_single_class_slot": int(own.any(dim=1).sum()),
            "collision_slots": sum(s.startswith("self:") for s in self.slots),
            "atomic_classes": int((codes == self.slot_index[atomic]).any(dim=1).sum())
            if atomic in self.slot_index
            else 0,
        }

    def extend_labels(self, chars: list[str]) -> dict[str, list[str]]:
        """Add classes that were not in training, coded from their trees with the known slots.

        Returns, per added character, the slots of its code that training never saw (left out;
        a character with no known slot scores 0 everywhere). Characters already present are
        skipped.
        """
        new = [c for c in dict.fromkeys(chars) if c not in self.labels]
        codes = [code_slots(c, self.depth, self.max_children) for c in new]
        known = self.slot_index
        unknown = {
            c: [s for s in code if s not in known] for c, code in zip(new, codes, strict=True)
        }
        if new:
            added = pack_codes(codes, self.slot_index).to(self.codes.device)
            width = max(self.codes.shape[1], added.shape[1])
            self.codes = torch.cat([_pad(self.codes, width), _pad(added, width)])
            self.labels += new
            self.refresh()
        return unknown


def _refresh_after_load(module: HierCode, keys: object) -> None:
    """Load hook (a module-level function, so the network pickles for spawned DDP ranks)."""
    module.refresh()


def unit(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Rows scaled to length 1 (F.normalize without its ``expand``, which ONNX Runtime's
    quantization shape inference cannot follow with a dynamic batch)."""
    return x * torch.rsqrt((x * x).sum(dim=1, keepdim=True).clamp(min=eps * eps))


def _pad(codes: Tensor, width: int) -> Tensor:
    return F.pad(codes, (0, width - codes.shape[1]), value=-1)


@register("hiercode")
def build_hiercode(labels: list[str], **kwargs) -> HierCode:
    """``model=hiercode``."""
    return HierCode(labels, **kwargs)
