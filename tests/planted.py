"""Tiny Qwen2 models with hand-set weights and known, planted language specialization.

Each language owns a block of embedding dimensions (its tokens are positive there and zero in
the other languages' blocks); all tokens share a block of random "content" dimensions; head
outputs go to a separate block that only the (untied) unembedding reads.

* A planted neuron of language k reads only block k in ``gate_proj``: act > 0 on k's tokens only;
  other neurons read the shared block and fire for every language alike. Only planted neurons
  write (through ``down_proj``) to the attention block, so zeroing them changes only their
  language's loss; nothing else the MLPs compute reaches the residual stream.
* A planted head of language k reads only block k in ``v_proj``: its output is zero on other
  languages' tokens; other heads read the shared block. ``q_proj = k_proj = 0`` (uniform causal
  attention). Heads write to the attention block, which the unembedding reads, so each head's
  output changes the loss of the languages it is non-zero on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

LANGS = ["en", "de", "ja", "sw"]
BLOCK = 8
N_LAYERS, N_HEADS, D_MLP = 3, 4, 64
PLANTED_HEADS = {"en": (0, 0), "de": (1, 1), "ja": (2, 2), "sw": (2, 0)}


@dataclass
class Planted:
    model: Qwen2ForCausalLM
    tokenizer: PreTrainedTokenizerFast
    neurons: dict[str, set[tuple[int, int]]]
    heads: dict[str, tuple[int, int]]
    texts: dict[str, list[list[int]]] = field(default_factory=dict)
    text_strings: dict[str, list[str]] = field(default_factory=dict)

    def save(self, path: Path) -> Path:
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        return path


def _tokenizer(vocab_per_lang: int) -> PreTrainedTokenizerFast:
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
    for lang in LANGS:
        for i in range(vocab_per_lang):
            vocab[f"{lang}{i}"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def build(seed: int = 0, neurons_per_lang: int = 3, vocab_per_lang: int = 40, specialize: bool = True,
          n_texts: int = 12, text_len: int = 24, shared_head_scale: float = 0.3,
          helpful_heads: float = 0.0, unembed_scale: float = 0.5) -> Planted:
    """A planted model. ``specialize=False``: nothing planted, and token ``i`` of every language has
    the same shared content, so no unit depends on the language at all. ``shared_head_scale`` sets
    how much the shared heads matter (small: each planted head is also its language's most important
    head by raw importance, which is what the study's top-2 % LAHIS selection needs); ``helpful_heads``
    how strongly a planted head raises its language's tokens (so scaling it up lowers the loss, the
    sign LAHIS counts); ``unembed_scale`` the random part of the unembedding."""
    g = torch.Generator().manual_seed(seed)
    tok = _tokenizer(vocab_per_lang)
    n_blocks = len(LANGS) + 2  # languages, shared, attention
    d = BLOCK * n_blocks
    shared = slice(BLOCK * len(LANGS), BLOCK * (len(LANGS) + 1))
    attn = slice(BLOCK * (len(LANGS) + 1), d)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=d, intermediate_size=D_MLP, num_hidden_layers=N_LAYERS,
                      num_attention_heads=N_HEADS, num_key_value_heads=N_HEADS, tie_word_embeddings=False,
                      max_position_embeddings=128, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg).eval()
    head_dim = d // N_HEADS
    neurons: dict[str, set[tuple[int, int]]] = {lang: set() for lang in LANGS}
    writes: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        emb = torch.zeros(len(tok), d)
        # Without specialization token i of every language is the same vector up to which language
        # block holds its marker values, and no unit reads language blocks: nothing depends on language.
        content = torch.randn(vocab_per_lang, BLOCK, generator=g)
        marker = 0.5 + torch.rand(vocab_per_lang, BLOCK, generator=g)
        for k, lang in enumerate(LANGS):
            for i in range(vocab_per_lang):
                t = tok.convert_tokens_to_ids(f"{lang}{i}")
                if specialize:
                    emb[t, BLOCK * k : BLOCK * (k + 1)] = 0.5 + torch.rand(BLOCK, generator=g)
                    emb[t, shared] = torch.randn(BLOCK, generator=g)
                else:
                    emb[t, BLOCK * k : BLOCK * (k + 1)] = marker[i]
                    emb[t, shared] = content[i]
        emb[:3, shared] = torch.randn(3, BLOCK, generator=g)
        model.model.embed_tokens.weight.copy_(emb)
        for layer_i, layer in enumerate(model.model.layers):
            gate = torch.zeros(D_MLP, d)
            gate[:, shared] = torch.randn(D_MLP, BLOCK, generator=g)
            if specialize:
                for k, lang in enumerate(LANGS):
                    for j in range(neurons_per_lang):
                        n = (7 * layer_i + 13 * k + 5 * j) % D_MLP
                        while any((layer_i, n) in s for s in neurons.values()):
                            n = (n + 1) % D_MLP
                        gate[n] = 0
                        gate[n, BLOCK * k : BLOCK * (k + 1)] = 1.0
                        neurons[lang].add((layer_i, n))
            layer.mlp.gate_proj.weight.copy_(gate)
            layer.mlp.up_proj.weight.copy_(torch.zeros(D_MLP, d))
            layer.mlp.up_proj.weight[:, shared] = 1.0 / BLOCK  # act·up is a positive multiple of act
            down = torch.zeros(d, D_MLP)
            for lang_units in neurons.values():  # planted neurons write to the attention block
                for lay, n in lang_units:
                    if lay == layer_i:
                        down[attn, n] = torch.randn(BLOCK, generator=g)
            layer.mlp.down_proj.weight.copy_(down)
            att = layer.self_attn
            for proj in (att.q_proj, att.k_proj):
                proj.weight.zero_()
                proj.bias.zero_()
            v = torch.zeros(N_HEADS * head_dim, d)
            o = torch.zeros(d, N_HEADS * head_dim)
            for h in range(N_HEADS):
                rows = slice(h * head_dim, (h + 1) * head_dim)
                owner = next((lang for lang, lh in PLANTED_HEADS.items() if lh == (layer_i, h)), None) \
                    if specialize else None
                if owner is None:
                    v[rows, shared] = torch.randn(head_dim, BLOCK, generator=g) * shared_head_scale
                else:
                    k = LANGS.index(owner)
                    v[rows, BLOCK * k : BLOCK * (k + 1)] = torch.randn(head_dim, BLOCK, generator=g)
                o[attn, rows] = torch.randn(BLOCK, head_dim, generator=g)
                if owner is not None:  # the direction this head writes on its language's tokens
                    ids = [tok.convert_tokens_to_ids(f"{owner}{i}") for i in range(vocab_per_lang)]
                    writes[owner] = o[attn, rows] @ (v[rows] @ emb[ids].mean(0))
            att.v_proj.weight.copy_(v)
            att.v_proj.bias.zero_()
            att.o_proj.weight.copy_(o)
        head = torch.randn(len(tok), d, generator=g) * unembed_scale
        for lang, w in writes.items():  # a planted head raises its own language's tokens: it helps
            for i in range(vocab_per_lang):
                head[tok.convert_tokens_to_ids(f"{lang}{i}"), attn] += helpful_heads * w / w.norm() ** 2
        if not specialize:
            head[:, : BLOCK * len(LANGS)] = 0
            for k, lang in enumerate(LANGS):  # each language's token i gets the same unembedding row
                for i in range(vocab_per_lang):
                    head[tok.convert_tokens_to_ids(f"{lang}{i}")] = head[tok.convert_tokens_to_ids(f"{LANGS[0]}{i}")]
        model.lm_head.weight.copy_(head)
    texts = {}
    for k, lang in enumerate(LANGS):
        base = tok.convert_tokens_to_ids(f"{lang}0")
        texts[lang] = [(base + torch.randint(0, vocab_per_lang, (text_len,), generator=g)).tolist()
                       for _ in range(n_texts)]
    strings = {lang: [" ".join(tok.convert_ids_to_tokens(t)) for t in seqs] for lang, seqs in texts.items()}
    heads = dict(PLANTED_HEADS) if specialize else {}
    return Planted(model, tok, neurons, heads, texts, strings)
