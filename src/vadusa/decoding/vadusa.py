"""VADUSA decoding: draft heads propose, a sparse tree is verified in one forward pass.

One step, with the last emitted token as the tree's root (already the base model's own
sample) and the draft heads' logits from the hidden state that produced it:

1. draft: node i at depth d takes the rank-r_i token of head d (speech tokens and eos only).
   Independent (MEDUSA) heads guess every depth at once (``MedusaDrafter``); Hydra heads guess
   depth d once per parent node at depth d - 1, reading that node's path
   (``HydraDrafter``), so siblings' children may differ.
2. ``verify``: one forward pass over the root and every node, each node at position
   ``prefix + depth`` and attending to the committed prefix (through the KV cache), the root,
   its ancestors and itself (``TreeBuffers.mask``). The base head at a node's parent gives the
   distribution at the node's position; the acceptance rule (``decoding/acceptance.py``) says
   yes or no per node, reading each parent's distribution and draws once; the longest
   root-to-leaf run of yeses wins (ties: the earlier path). Under tolerance, speech ends
   where the base's own draw 0 is eos, as in AR decoding, whatever tau is.
3. ``commit``: the accepted nodes' keys and values move to contiguous cache slots after the
   root; the base samples one bonus token at the last accepted node (draw 0 of that position,
   as AR decoding would), which becomes the next root; the draft heads read the same node's
   hidden state for the next candidates.

A model with frame features (its text alignment) gets the utterance's table with both calls:
a node reads the row of its position, prefix + depth, the row AR decoding reads there.

Every draw is keyed by (seed, utterance, position, draw), so with tau = 1 each emitted token
is exactly the token AR decoding samples at that position: same output, fewer forwards.

Shapes: L prefix length, N tree nodes (root included), S cache slots, C width, K heads,
V output vocabulary, T draws per position, D the tree's depth.
"""

from __future__ import annotations

import time

import torch

from vadusa.decoding.acceptance import AcceptRule, accepted_by_parent
from vadusa.decoding.ar import DecodeResult
from vadusa.decoding.sampling import (
    SamplingConfig,
    keyed_samples,
    keyed_uniforms,
    processed_logprobs,
    speech_only,
)
from vadusa.decoding.static import pad_frames, static_slots, step_function
from vadusa.decoding.tree import TreeBuffers
from vadusa.model.draft_heads import DraftHeads, HydraHeads
from vadusa.model.transformer import Transformer


class MedusaDrafter:
    """Independent heads: every depth's candidates from one batched product of the heads."""

    def __init__(self, heads: DraftHeads, tree: TreeBuffers, eos: int) -> None:
        self.stacked = heads.stacked(tree.max_depth)  # no deeper than the tree reads
        self.tree, self.eos = tree, eos
        self.head, self.rank = tree.head[1:], tree.rank[1:]  # (N - 1,) each
        self.allowed: torch.Tensor | None = None  # made at the first call, in its dtype

    def draft(self, hidden: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        """hidden (C,) that produced ``root`` (a 0-d id on the device) -> (N,) the tree's
        tokens, ``root`` first: node i takes the rank-r_i speech token (or eos) of head d_i."""
        logits = self.stacked.draft(hidden)  # (K, V)
        if self.allowed is None:  # -inf on bos and pad, made once in the logits' dtype
            self.allowed = speech_only(torch.zeros_like(logits[0]), self.eos)  # (V,)
            self.head, self.rank = self.head.to(logits.device), self.rank.to(logits.device)
        top = (logits + self.allowed).topk(self.tree.max_rank, dim=-1).indices  # (K, R)
        return torch.cat([root.view(1), top[self.head, self.rank]])  # (N,)


class HydraDrafter:
    """Sequentially dependent heads: depth by depth, head d runs once per parent at depth
    d - 1 on the path root .. parent, and the parent's children take its ranks."""

    def __init__(self, heads: HydraHeads, tree: TreeBuffers, eos: int) -> None:
        self.stacked = heads.stacked(tree.max_depth)  # no deeper than the tree reads
        self.tree, self.eos = tree, eos
        device = heads.embed.weight.device
        # added to logits: -inf on bos and pad (as ``speech_only``, without a copy per call)
        self.allowed = speech_only(torch.zeros(heads.pad + 1, dtype=self.stacked.dtype,
                                               device=device), eos)  # (V,)
        parent = tree.parent.tolist()
        depth = tree.depth.tolist()
        chain = [[0]]  # node indices from the root to each node
        for i in range(1, tree.size):
            chain.append(chain[parent[i]] + [i])
        self.plan = []  # per depth d: parents' paths (P, d), children (n,), their parent, rank
        for d in range(1, tree.max_depth + 1):
            children = [i for i in range(1, tree.size) if depth[i] == d]
            parents = sorted({parent[i] for i in children})
            self.plan.append((
                torch.tensor([chain[q] for q in parents], dtype=torch.long, device=device),
                torch.tensor(children, dtype=torch.long, device=device),
                torch.tensor([parents.index(parent[i]) for i in children], dtype=torch.long,
                             device=device),
                tree.rank[children].to(device),
                int(tree.rank[children].max()) + 1))

    def draft(self, hidden: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        """hidden (C,) that produced ``root`` (a 0-d id) -> (N,) the tree's tokens, root
        first."""
        tokens = torch.empty(self.tree.size, dtype=torch.long, device=hidden.device)  # (N,)
        tokens[0] = root
        shared = self.stacked.hidden_part(hidden)  # (K, C): every head's hidden-state share
        for d, (paths, children, parent_of, rank, ranks) in enumerate(self.plan, start=1):
            logits = self.stacked.step(d, hidden, shared, tokens[paths])  # (P, V)
            top = (logits + self.allowed).topk(ranks, dim=-1).indices  # (P, R_d)
            tokens[children] = top[parent_of, rank]
        return tokens


def longest_accepted(ok: torch.Tensor, paths: torch.Tensor, on_path: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """ok (N,) per-node acceptance (root True); paths (R, D + 1) the tree's root-to-leaf
    node indices, root first, a short path padded with any index; on_path (R, D + 1) which
    entries are real -> the longest accepted run's path (D + 1,) and its length (0-d, root
    included). Ties go to the earlier path (argmax returns the first maximum). On the
    device, without a host sync."""
    runs = (ok[paths] & on_path).cumprod(-1).sum(-1)  # (R,): accepted nodes from the root
    best = runs.argmax()
    return paths[best], runs[best]


class VadusaDecoder:
    """Speculative decoding of one utterance at a time with a fixed tree and rule. A pass
    stays on the model's device from the draft to the bonus token and synchronises with the
    host once, to learn what it emitted; ``compile`` runs the tree pass with fixed shapes and
    compiled (``decoding/static.py``)."""

    def __init__(self, model: Transformer, heads: DraftHeads | HydraHeads, tree: TreeBuffers,
                 rule: AcceptRule, sampling: SamplingConfig, *, speech_offset: int,
                 eos: int, n_heads: int | None = None, compile: str = "") -> None:
        self.n_heads = n_heads or len(heads)
        if tree.max_depth > self.n_heads:
            raise ValueError(f"the tree is {tree.max_depth} deep but only {self.n_heads} "
                             f"draft heads are in use; use a tree of depth <= {self.n_heads}")
        self.model, self.heads, self.tree, self.rule = model, heads, tree, rule
        self.sampling, self.speech_offset, self.eos = sampling, speech_offset, eos
        self.compile, self.step = compile, step_function(model, compile)
        device = model.head.weight.device
        dtype = model.head.weight.dtype
        self.tree_bias = torch.zeros(tree.mask.shape, dtype=dtype, device=device).masked_fill_(
            ~tree.mask.to(device), float("-inf"))  # (N, N): 0 where a node may attend, -inf not
        self.depth = tree.depth.to(device)
        self.drafter = (HydraDrafter(heads, tree, eos) if isinstance(heads, HydraHeads)
                        else MedusaDrafter(heads, tree, eos))
        # acceptance reads the base's distribution at parent nodes only (children of a parent
        # share its row): P parents, and each node's index among them
        parents = sorted(set(tree.parent[1:].tolist()))
        self.parents = torch.tensor(parents, dtype=torch.long, device=device)  # (P,)
        self.parent_of = torch.tensor([parents.index(q) for q in tree.parent[1:].tolist()],
                                      dtype=torch.long, device=device)  # (N - 1,)
        self.child_depth = self.depth[self.parents] + 1  # (P,): the position children verify
        # root-to-leaf paths (R, D + 1), root first; -1 pads a short path (read as the root,
        # and never accepted: ``on_path``)
        self.on_path = tree.retrieve.to(device) >= 0  # (R, D + 1)
        self.paths = tree.retrieve.to(device).clamp_min(0)  # (R, D + 1)

    def verify(self, tokens: torch.Tensor, hidden: torch.Tensor, here: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One tree's decisions, on the device: tokens (N,) the root and drafts; hidden (N, C)
        the base's last hidden state at every node; here (D + 2, T) the draws of the positions
        the tree reaches (row d: the root's depth d) -> the accepted path (D + 1,) node
        indices, root first (entries past its length arbitrary), its length (0-d, root
        included) and the bonus token (0-d: the base's own draw 0 after the path's last
        node)."""
        # the base head only where it is read: the parents' rows (a leaf's row is read only
        # if the path ends there, for the bonus, below); a V x C product per row saved
        logits = self.model.head(hidden[self.parents])  # (P, V)
        logprobs = processed_logprobs(speech_only(logits, self.eos), self.sampling)  # (P, V)
        ok = torch.ones(len(tokens), dtype=torch.bool, device=tokens.device)  # (N,)
        ok[1:] = accepted_by_parent(self.rule, tokens[1:], self.parent_of, logprobs,
                                    here[self.child_depth],  # children's position's draws
                                    eos=self.eos)
        path, length = longest_accepted(ok, self.paths, self.on_path)  # (D + 1,), 0-d
        end = path[length - 1]  # 0-d: the last accepted node
        end_logprobs = processed_logprobs(speech_only(self.model.head(hidden[end]), self.eos),
                                          self.sampling)  # (V,)
        bonus = keyed_samples(end_logprobs, here[self.depth[end] + 1, :1])[0]  # draw 0
        return path, length, bonus

    @torch.inference_mode()
    def decode(self, prefix: torch.Tensor, *, max_new: int, seed: int, utterance: int,
               frames: torch.Tensor | None = None) -> DecodeResult:
        """prefix (L,) input ids -> up to ``max_new`` output ids; ``frames`` (S_f, F), the
        utterance's frame features if the model reads them."""
        model, tree, compile = self.model, self.tree, self.compile
        device = model.head.weight.device
        table = None if frames is None else frames[None].to(device)  # (1, S_f, F)
        start = time.perf_counter()
        L, N, D = len(prefix), tree.size, tree.max_depth
        S = L + max_new + N + 1
        if compile:
            S = static_slots(model, S)
            table = pad_frames(table, S)
        model.setup_cache(batch=1, max_seq=S, keep=bool(compile))
        slots = torch.arange(S, device=device)
        # every keyed draw the utterance may read, made at once: row t holds position t's
        # draws (nodes of one depth share a position, and so their draws)
        drawn = keyed_uniforms(seed, utterance, range(max_new + D + 2),
                               self.rule.draws).to(device)  # (max_new + D + 2, T)

        # prefill: the base's logits and the heads' logits at the prefix's last position
        pos = torch.arange(L, device=device)[None]  # (1, L)
        hidden = model.hidden(prefix[None].to(device), pos,
                              (slots[None, :L] <= pos[0, :, None])[None],
                              frames=table)  # (1, L, C)
        last = hidden[0, -1]  # (C,)
        base_logprobs = processed_logprobs(speech_only(model.head(last), self.eos),
                                           self.sampling)  # (V,)
        root = keyed_samples(base_logprobs, drawn[0, :1])[0]  # 0-d, on the device
        stopped = int(root) == self.eos
        forwards, out, accept_lengths = 1, [], [0 if stopped else 1]  # tokens per forward
        if not stopped:
            out.append(int(root))
        targets = torch.arange(1, D + 1, device=device)  # (D,): slots after the root, from c
        while not stopped and len(out) < max_new:
            tokens = self.drafter.draft(last, root)  # (N,): the root, then drafts

            # verify: the root (the last emitted token) sits at slot and position c, the tree
            # in slots [c, c + N); the mask's last axis is the slots written so far, or with
            # ``compile`` the whole cache (a fixed shape)
            c = L + len(out) - 1
            mask = torch.full((1, N, S if compile else c + N), float("-inf"),
                              dtype=self.tree_bias.dtype, device=device)
            mask[0, :, :c] = 0  # the committed prefix
            mask[0, :, c:c + N] = self.tree_bias
            hidden = self.step(self.speech_offset + tokens[None], (c + self.depth)[None], mask,
                               cache_slots=slots[c:c + N] if compile else slice(c, c + N),
                               frames=table)[0]  # (N, C)
            forwards += 1
            path, length, bonus = self.verify(tokens, hidden,
                                              drawn[len(out) - 1:len(out) + D + 1])

            root, last = bonus, hidden[path[length - 1]]  # the next pass's root and input
            # the pass's one host sync: what it emitted
            n, *read = torch.cat([length.view(1), path, tokens[path], bonus.view(1)]).tolist()
            nodes, path_tokens, bonus_token = read[:D + 1], read[D + 1:-1], read[-1]
            # commit: the accepted nodes move to the slots right after the root, unless they
            # are there already (the top candidates' chain is; its nodes come first)
            if nodes[:n] != list(range(n)):
                model.compact_cache(path[1:n] + c, targets[:n - 1] + c)
            emitted = path_tokens[1:n]
            if self.eos in emitted:
                emitted = emitted[:emitted.index(self.eos)]
                stopped = True
            emitted = emitted[:max_new - len(out)]
            out += emitted
            produced = len(emitted)
            if not stopped and len(out) < max_new:
                # the bonus token: the base's own sample after the last kept node (draw 0)
                stopped = bonus_token == self.eos
                if not stopped:
                    out.append(bonus_token)
                    produced += 1
            accept_lengths.append(produced)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if not compile:  # a compiled pass keeps its cache (static.py)
            model.clear_cache()
        return DecodeResult(out, bool(stopped), forwards, seconds, accept_lengths)
