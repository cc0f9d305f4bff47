import torch, time
from transformers import Qwen2Config, Qwen2ForCausalLM
from bench.gpu_check import QWEN25_7B
from interp.heads import head_importance
from interp.collect import CollectConfig
from training.models import train_tokenizer
cfg = Qwen2Config(**{**QWEN25_7B, "num_hidden_layers": 2, "vocab_size": 4096})
m = Qwen2ForCausalLM._from_config(cfg, dtype=torch.bfloat16).eval()
print("nan params", any(not torch.isfinite(p).all() for p in m.parameters()))
tok = train_tokenizer(["hello world this is text"]*10, vocab_size=300, min_frequency=1)
g = torch.Generator().manual_seed(1)
texts = {"en": [torch.randint(0, 545, (128,), generator=g).tolist() for _ in range(2)]}
for meth in ["gradient", "lahis"]:
    imp = head_importance(m, tok, texts, meth, CollectConfig(backend="torch", seq_len=128, batch_size=1, pack=False, progress=False), max_samples=2)
    print(meth, torch.isfinite(imp.scores).all(), imp.scores.flatten()[:8])
