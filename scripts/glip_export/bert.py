"""BERT with Hugging Face's parameter names, for GLIP's text encoder and the head's text layers.

`BertModel` is `language_backbone.body.model` (bert-base-uncased without the pooler); GLIP passes
no token_type_ids, so type 0 is used throughout. `BertLayer(clamp=True)` is GLIP's
`BertEncoderLayer` in the DyHead tower, which clamps attention scores, the FFN activations and the
output to +-50000 (`CLAMP_BERTATTN_*`, `modeling_bert.clamp_values`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import BertConfig

CLAMP = 50000.0


def extended_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B,T] 1/0 mask -> [B,1,1,T] additive mask (0 or the dtype's minimum), as HF builds it."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig, clamp: bool):
        super().__init__()
        self.heads = cfg.heads
        self.head_dim = cfg.hidden // cfg.heads
        self.clamp = clamp
        self.query = nn.Linear(cfg.hidden, cfg.hidden)
        self.key = nn.Linear(cfg.hidden, cfg.hidden)
        self.value = nn.Linear(cfg.hidden, cfg.hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.reshape(b, t, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if self.clamp:
            scores = scores.clamp(-CLAMP, CLAMP)
        probs = (scores + mask).softmax(dim=-1)
        out = (probs @ v).transpose(1, 2)
        return out.reshape(out.shape[0], out.shape[1], -1)


class BertSelfOutput(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden, cfg.hidden)
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig, clamp: bool):
        super().__init__()
        self.self = BertSelfAttention(cfg, clamp)
        self.output = BertSelfOutput(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig, clamp: bool):
        super().__init__()
        self.clamp = clamp
        self.dense = nn.Linear(cfg.hidden, cfg.intermediate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense(x)
        if self.clamp:
            return F.gelu(x.clamp(-CLAMP, CLAMP)).clamp(-CLAMP, CLAMP)
        return F.gelu(x)


class BertOutput(nn.Module):
    def __init__(self, cfg: BertConfig, clamp: bool):
        super().__init__()
        self.clamp = clamp
        self.dense = nn.Linear(cfg.intermediate, cfg.hidden)
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        x = self.dense(x)
        if self.clamp:
            return self.LayerNorm(x.clamp(-CLAMP, CLAMP) + residual).clamp(-CLAMP, CLAMP)
        return self.LayerNorm(x + residual)


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig, clamp: bool = False):
        super().__init__()
        self.attention = BertAttention(cfg, clamp)
        self.intermediate = BertIntermediate(cfg, clamp)
        self.output = BertOutput(cfg, clamp)

    def forward(self, x: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """`text_mask`: [B,T] with 1 for real tokens."""
        a = self.attention(x, extended_mask(text_mask, x.dtype))
        return self.output(self.intermediate(a), a)


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.register_buffer("position_ids", torch.arange(cfg.max_positions).unsqueeze(0))
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab, cfg.hidden)
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.position_embeddings(self.position_ids[:, :t])
        return self.LayerNorm(x + self.token_type_embeddings.weight[0])


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.layers))


class BertModel(nn.Module):
    """input_ids, attention_mask [B,T] -> last hidden state [B,T,hidden]."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.apply(init_bert_weights)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, attention_mask)
        return x


def init_bert_weights(m: nn.Module) -> None:
    """BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
