"""CLLM4Rec (Zhu et al., WWW 2024) on a transformers causal LM: soft user/item tokens, two views, one item head.

One backbone serves both views. A soft token has two embeddings: a collaborative one (read by the collaborative
LM and the recommendation head) and a content one (read by the content LM); `tie_loss` is the paper's mutual
regulariser (a Gaussian prior centring each on the other). Text tokens use the backbone's own embedding matrix,
which stays frozen (it is tied to the backbone's LM head, the content view's output layer).

The item head is tied to the collaborative item embeddings, as in the paper, plus a per-item bias (our addition:
it holds the popularity prior, so the embeddings need not). Both heads read the last block's output through a
trainable affine lens (identity at start; our addition, needed once the backbone is cut short). One forward pass
of the recommendation prompt gives logits over every item at the last position: a multinomial over the catalog
(Mult-VAE style likelihood).

Backbone budget: `prepare_backbone` keeps the first `layers` transformer blocks (the rest are dropped, not run)
and trains only the top `train_layers` of them (0 = the backbone is frozen; only soft tokens, the lens and the
head bias learn, as in the paper's released code where only the new token embeddings train).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .corpus import IGNORE, Batch
from .vocab import SoftVocab

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
VIEWS = ("collab", "content")


class CLLMLoadError(Exception):
    """A saved CLLM4Rec model could not be read; the message says what is wrong."""


def _decoder(backbone):
    """The transformer stack without the LM head (LlamaModel for LlamaForCausalLM, …)."""
    dec = backbone.get_decoder() if hasattr(backbone, "get_decoder") else None
    if dec is None or not hasattr(dec, "layers"):
        raise ValueError(f"{type(backbone).__name__}: expected a decoder with `.layers` (Llama-like causal LM)")
    return dec


def prepare_backbone(backbone, layers: int | None, train_layers: int):
    """Keep the first `layers` blocks, freeze everything but the top `train_layers` blocks (and the final norm
    when any block trains). Returns the backbone (modified in place)."""
    dec = _decoder(backbone)
    total = len(dec.layers)
    keep = total if layers is None else int(layers)
    if not 1 <= keep <= total:
        raise ValueError(f"layers must be in 1..{total} (the backbone has {total}), got {layers}")
    if not 0 <= train_layers <= keep:
        raise ValueError(f"train_layers must be in 0..{keep}, got {train_layers}")
    if keep < total:
        dec.layers = nn.ModuleList(list(dec.layers)[:keep])
        backbone.config.num_hidden_layers = keep
        if getattr(backbone.config, "layer_types", None):
            backbone.config.layer_types = backbone.config.layer_types[:keep]
    for p in backbone.parameters():
        p.requires_grad_(False)
    if train_layers:
        for blk in list(dec.layers)[keep - train_layers:]:
            for p in blk.parameters():
                p.requires_grad_(True)
        norm = getattr(dec, "norm", None)
        if norm is not None:
            for p in norm.parameters():
                p.requires_grad_(True)
    return backbone


class CLLM4Rec(nn.Module):
    def __init__(self, backbone, vocab: SoftVocab, *, item_init: torch.Tensor | None = None,
                 user_init: torch.Tensor | None = None, init_std: float | None = None, tie_head: bool = True):
        super().__init__()
        text = backbone.get_input_embeddings()
        if text.num_embeddings < vocab.text_size:
            raise ValueError(f"backbone has {text.num_embeddings} text tokens but the vocabulary expects "
                             f"{vocab.text_size}")
        self.backbone = backbone
        self.vocab = vocab
        d = text.embedding_dim
        std = float(init_std if init_std is not None else text.weight.detach().float().std())
        self.collab_user = nn.Embedding(vocab.n_users + 1, d)  # + the anonymous user
        self.collab_item = nn.Embedding(vocab.n_items, d)
        self.content_user = nn.Embedding(vocab.n_users + 1, d)
        self.content_item = nn.Embedding(vocab.n_items, d)
        self.tie_head = tie_head
        # Untied (an ablation): the head has its own item vectors, so the output role's large softmax gradients
        # do not swamp the small gradients the same vectors get as prompt inputs through the backbone.
        self.head_item = None if tie_head else nn.Embedding(vocab.n_items, d)
        self.item_bias = nn.Parameter(torch.zeros(vocab.n_items))
        # log of the scale on h·e (`calibrate_scale` sets it so the untrained head's logits spread by ~1 around the
        # bias: with raw dot products the first softmax is peaked at random items, worse than uniform).
        self.item_log_scale = nn.Parameter(torch.zeros(()))
        # An affine "lens" (identity at start) from the last kept block to the embedding space that both heads
        # read: a backbone cut after a few blocks does not speak the LM head's language (SmolLM2 cut at 8 of 30
        # blocks: 22 nats per token on plain text through the LM head, 4.4 with all blocks).
        self.lens = nn.Linear(d, d)
        with torch.no_grad():
            self.lens.weight.copy_(torch.eye(d))
            self.lens.bias.zero_()
        with torch.no_grad():
            for table, init in ((self.collab_item, item_init), (self.content_item, item_init),
                                (self.collab_user, user_init), (self.content_user, user_init)):
                table.weight.normal_(0.0, std)
                if init is not None:
                    table.weight.mul_(0.5).add_(init.to(table.weight.dtype))
            if self.head_item is not None:
                self.head_item.weight.copy_(self.collab_item.weight)

    # -- embeddings and forward -------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.item_bias.device

    def soft_parameters(self) -> list[nn.Parameter]:
        """The new vectors: token embeddings of both views, the head's own vectors, bias and scale."""
        return [self.collab_user.weight, self.collab_item.weight, self.content_user.weight,
                self.content_item.weight, self.item_bias, self.item_log_scale,
                *([self.head_item.weight] if self.head_item is not None else [])]

    def dense_parameters(self) -> list[nn.Parameter]:
        """Dense matrices (the lens and any trained backbone blocks): these need a backbone-sized learning rate —
        Adam moves every entry by about the learning rate per step, which at embedding rates scrambles a matrix."""
        return [self.lens.weight, self.lens.bias, *(p for p in self.backbone.parameters() if p.requires_grad)]

    def embed(self, ids: torch.Tensor, view: str = "collab") -> torch.Tensor:
        v = self.vocab
        users, items = (self.collab_user, self.collab_item) if view == "collab" else (
            self.content_user, self.content_item)
        text = self.backbone.get_input_embeddings()(ids.clamp(max=v.text_size - 1))
        is_user = ((ids >= v.user_base) & (ids < v.item_base)).unsqueeze(-1)
        is_item = (ids >= v.item_base).unsqueeze(-1)
        u = users((ids - v.user_base).clamp(0, v.n_users))
        i = items((ids - v.item_base).clamp(0, v.n_items - 1))
        return torch.where(is_item, i, torch.where(is_user, u, text.to(i.dtype)))

    def hidden(self, ids: torch.Tensor, mask: torch.Tensor, view: str = "collab") -> torch.Tensor:
        x = self.embed(ids, view).to(self.backbone.get_input_embeddings().weight.dtype)
        h = _decoder(self.backbone)(inputs_embeds=x, attention_mask=mask, use_cache=False).last_hidden_state
        return self.lens(h.to(self.lens.weight.dtype))

    def item_logits(self, h: torch.Tensor) -> torch.Tensor:
        head = self.collab_item if self.head_item is None else self.head_item
        # float32 even under autocast: bfloat16 keeps ~3 digits, too few to rank a catalog of thousands
        with torch.autocast(h.device.type, enabled=False):
            dots = h.float() @ head.weight.float().T
            return self.item_log_scale.float().exp() * dots + self.item_bias.float()

    @torch.no_grad()
    def calibrate_scale(self, batch: Batch) -> float:
        """Set the head's scale so that its dot products on `batch` have unit standard deviation over items."""
        self.item_log_scale.zero_()
        spread = float((self.last_logits(batch) - self.item_bias).std(dim=-1).mean())
        self.item_log_scale.fill_(-np.log(max(spread, 1e-6)))
        return spread

    # -- the three objectives ----------------------------------------------------------------------------------
    def _tensors(self, batch: Batch):
        dev = self.device
        return (torch.as_tensor(batch.ids, device=dev), torch.as_tensor(batch.mask, device=dev),
                torch.as_tensor(batch.labels, device=dev))

    def collaborative_loss(self, batch: Batch) -> torch.Tensor:
        """Next-item prediction over item tokens only (softmax over the catalog, tied head)."""
        ids, mask, labels = self._tensors(batch)
        h = self.hidden(ids, mask, "collab")
        sel = labels != IGNORE
        return F.cross_entropy(self.item_logits(h[sel]), labels[sel])

    def content_loss(self, batch: Batch, out_rows: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token prediction of document text with the backbone's own LM head.

        `out_rows` restricts the softmax to those text tokens (the labels are then positions in `out_rows`): the
        tokens the documents use, a fifth of SmolLM2's 49k on MovieLens, and the head is most of a step's cost."""
        ids, mask, labels = self._tensors(batch)
        h = self.hidden(ids, mask, "content")
        sel = labels != IGNORE
        head = self.backbone.get_output_embeddings()
        if out_rows is None:
            logits = head(h[sel])
        else:
            bias = head.bias[out_rows] if getattr(head, "bias", None) is not None else None
            logits = F.linear(h[sel], head.weight[out_rows], bias)
        return F.cross_entropy(logits.float(), labels[sel])

    def recommendation_loss(self, batch: Batch, targets: list[np.ndarray]) -> torch.Tensor:
        """Multinomial negative log-likelihood of each row's target items under one softmax over the catalog."""
        logp = F.log_softmax(self.last_logits(batch, grad=True), dim=-1)
        rows = torch.as_tensor(np.concatenate(targets), device=self.device)
        which = torch.as_tensor(np.repeat(np.arange(len(targets)), [len(t) for t in targets]), device=self.device)
        return -logp[which, rows].sum() / len(targets)

    def tie_loss(self, ids: Iterable[np.ndarray], anchor_content: bool = False) -> torch.Tensor:
        """Mean squared distance between the collaborative and content embedding of the soft tokens in `ids`.

        `anchor_content` holds the content side fixed (fine-tuning: no content LM keeps it in place then)."""
        v = self.vocab
        flat = np.unique(np.concatenate([np.asarray(x).ravel() for x in ids]))
        users = torch.as_tensor(flat[(flat >= v.user_base) & (flat < v.item_base)] - v.user_base, device=self.device)
        items = torch.as_tensor(flat[flat >= v.item_base] - v.item_base, device=self.device)
        cu, ci = self.content_user(users), self.content_item(items)
        if anchor_content:
            cu, ci = cu.detach(), ci.detach()
        d_u = (self.collab_user(users) - cu).pow(2).sum(-1)
        d_i = (self.collab_item(items) - ci).pow(2).sum(-1)
        n = max(1, len(users) + len(items))
        return (d_u.sum() + d_i.sum()) / n

    def last_logits(self, batch: Batch, grad: bool = False) -> torch.Tensor:
        ids, mask, _ = self._tensors(batch)
        with torch.set_grad_enabled(grad):
            h = self.hidden(ids, mask, "collab")
            last = torch.as_tensor(batch.last, device=self.device)
            return self.item_logits(h[torch.arange(len(last), device=self.device), last])

    # -- persistence -------------------------------------------------------------------------------------------
    def save(self, out_dir: Path | str, tokenizer, meta: dict | None = None) -> Path:
        """A self-contained folder: the (truncated, possibly fine-tuned) backbone, tokenizer, soft tables, meta."""
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(out / "backbone")
        tokenizer.save_pretrained(out / "backbone")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()
                   if not k.startswith("backbone.")}, str(out / "soft.safetensors"))
        info = {"format": FORMAT_VERSION, "text_size": self.vocab.text_size, "user_ids": list(self.vocab.user_ids),
                "item_ids": list(self.vocab.item_ids), "tie_head": self.tie_head, "meta": meta or {}}
        (out / "cllm4rec.json").write_text(json.dumps(info), encoding="utf-8")
        return out


def load_cllm(path: Path | str, device: str | None = None, dtype=None):
    """(model, tokenizer, meta) from a folder written by `CLLM4Rec.save`. Raises CLLMLoadError."""
    import transformers
    from safetensors.torch import load_file

    from ..lm_loading import pick_device, pick_dtype

    p = Path(path).expanduser()
    info_path = p / "cllm4rec.json"
    if not info_path.is_file():
        raise CLLMLoadError(f"{p} is not a CLLM4Rec model folder (no cllm4rec.json); train one with "
                            "`chatrec-eval cllm4rec --save DIR`")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CLLMLoadError(f"{info_path} is not valid JSON: {e}") from e
    if info.get("format") != FORMAT_VERSION:
        raise CLLMLoadError(f"{p} has format {info.get('format')!r}; this code reads format {FORMAT_VERSION}")
    dev = pick_device(device)
    try:
        backbone = transformers.AutoModelForCausalLM.from_pretrained(p / "backbone", local_files_only=True,
                                                                     dtype=pick_dtype(dev, dtype))
        tok = transformers.AutoTokenizer.from_pretrained(p / "backbone", local_files_only=True)
        state = load_file(str(p / "soft.safetensors"))
    except (OSError, ValueError) as e:
        raise CLLMLoadError(f"could not read the model in {p}: {e}") from e
    vocab = SoftVocab(int(info["text_size"]), tuple(info["user_ids"]), tuple(info["item_ids"]))
    for p_ in backbone.parameters():
        p_.requires_grad_(False)
    model = CLLM4Rec(backbone, vocab, init_std=0.0, tie_head=bool(info.get("tie_head", True)))
    missing = set(model.state_dict()) - set(state) - {k for k in model.state_dict() if k.startswith("backbone.")}
    if missing:
        raise CLLMLoadError(f"{p}/soft.safetensors lacks {sorted(missing)}")
    model.load_state_dict(state, strict=False)
    model.to(dev).eval()
    return model, tok, info.get("meta", {})
