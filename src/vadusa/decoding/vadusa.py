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
    SpeechHead,
    keyed_samples,
    keyed_uniforms,
    processed_logprobs,
    speech_bias,
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
        self.ranks = tree.max_rank  # a number: the tree's property reads a tensor
        # node i the top guess of head i - 1 (a chain): the heads' guesses in order
        self.in_head_order = self.head.tolist() == list(range(tree.size - 1))
        # the projections' bias, -inf on bos and pad (speech tokens and eos only): made at
        # the first call, in the heads' dtype and on their device
        self.allowed: torch.Tensor | None = None

    def draft(self, hidden: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        """hidden (C,) that produced ``root`` ((1,), an id on the device) -> (N,) the tree's
        tokens, ``root`` first: node i takes the rank-r_i speech token (or eos) of head d_i."""
        if self.allowed is None:
            probe = self.stacked.draft(hidden)  # (K, V)
            self.allowed = speech_bias(probe.shape[-1], self.eos, probe.dtype, probe.device)
            self.head, self.rank = self.head.to(probe.device), self.rank.to(probe.device)
        logits = self.stacked.draft(hidden, self.allowed)  # (K, V)
        if self.ranks == 1:  # every node the top guess of its head
            best = logits.argmax(-1)  # (K,)
            picked = best[:len(self.head)] if self.in_head_order else best[self.head]  # (N - 1,)
            return torch.cat([root, picked])  # (N,)
        top = logits.topk(self.ranks, dim=-1).indices  # (K, R)
        return torch.cat([root, top[self.head, self.rank]])  # (N,)


class HydraDrafter:
    """Sequentially dependent heads: depth by depth, head d runs once per parent at depth
    d - 1 on the path root .. parent, and the parent's children take its ranks."""

    def __init__(self, heads: HydraHeads, tree: TreeBuffers, eos: int) -> None:
        self.stacked = heads.stacked(tree.max_depth)  # no deeper than the tree reads
        self.tree, self.eos = tree, eos
        device = heads.embed.weight.device
        # the projections' bias: -inf on bos and pad (speech tokens and eos only)
        self.allowed = speech_bias(heads.pad + 1, eos, self.stacked.dtype, device)  # (V,)
        parent = tree.parent.tolist()
        depth = tree.depth.tolist()
        chain = [[0]]  # node indices from the root to each node
        for i in range(1, tree.size):
            chain.append(chain[parent[i]] + [i])
        # per depth d: parents' paths (P, d), children (n,), where each child's token is in
        # the parents' top-R_d ids flattened (P R_d,): parent p's rank r at p R_d + r, R_d,
        # and whether the children are the parents' top guesses in the parents' order (then
        # an argmax is their tokens)
        self.plan = []
        for d in range(1, tree.max_depth + 1):
            children = [i for i in range(1, tree.size) if depth[i] == d]
            parents = sorted({parent[i] for i in children})
            ranks = int(tree.rank[children].max()) + 1
            self.plan.append((
                torch.tensor([chain[q] for q in parents], dtype=torch.long, device=device),
                torch.tensor(children, dtype=torch.long, device=device),
                torch.tensor([parents.index(parent[i]) * ranks + int(tree.rank[i])
                              for i in children], dtype=torch.long, device=device),
                ranks,
                ranks == 1 and [parents.index(parent[i]) for i in children] == list(
                    range(len(parents)))))

    def draft(self, hidden: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        """hidden (C,) that produced ``root`` ((1,), an id) -> (N,) the tree's tokens, root
        first."""
        tokens = torch.empty(self.tree.size, dtype=torch.long, device=hidden.device)  # (N,)
        tokens[:1] = root
        hidden = hidden.to(self.stacked.dtype)
        shares = self.stacked.hidden_part(hidden).unbind(0)  # K x (C,): each head's share
        for d, (paths, children, picked, ranks, tops) in enumerate(self.plan, start=1):
            logits = self.stacked.step(d, hidden, shares[d - 1], tokens[paths],
                                       self.allowed)  # (P, V)
            if tops:  # each parent's one child: its top guess
                tokens[children] = logits.argmax(-1)  # (P,)
                continue
            top = logits.topk(ranks, dim=-1).indices  # (P, R_d)
            tokens[children] = top.view(-1)[picked]  # (P, R_d) -> (P R_d,) -> (n,)
        return tokens


def longest_accepted(ok: torch.Tensor, paths: torch.Tensor, on_path: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """ok (N,) per-node acceptance (root True); paths (R, D + 1) the tree's root-to-leaf
    node indices, root first, a short path padded with any index; on_path (R, D + 1) which
    entries are real -> the longest accepted run's path (D + 1,) and its length (0-d, root
    included). Ties go to the earlier path (argmax returns the first maximum). On the
    device, without a host sync."""
    runs = (ok[paths] & on_path).cumprod(-1).sum(-1)  # (R,): accepted nodes from the root
    best = runs.argmax().view(1)  # (1,): gathered by, not read on the host
    return paths.index_select(0, best)[0], runs.gather(0, best)[0]


def last_node(path: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """path (D + 1,) and its length (0-d) -> (1,) its last node's index: a gather, not an
    index by a 0-d tensor (which reads the number on the host)."""
    return path.gather(0, length.view(1) - 1)


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
        tree_bias = torch.zeros(tree.mask.shape, dtype=dtype, device=device).masked_fill_(
            ~tree.mask.to(device), float("-inf"))  # (N, N): 0 where a node may attend, -inf not
        # what a pass writes into its mask, by how far the root moved since the last pass
        # (a = 0 .. D + 1 slots): a zeros for the newly committed slots, then the tree's mask
        self.bands = [torch.cat([torch.zeros(tree.size, a, dtype=dtype, device=device),
                                 tree_bias], 1) for a in range(tree.max_depth + 2)]  # (N, a + N)
        self.depth = tree.depth.to(device)
        self.depth_row = self.depth[None]  # (1, N)
        self.drafter = (HydraDrafter(heads, tree, eos) if isinstance(heads, HydraHeads)
                        else MedusaDrafter(heads, tree, eos))
        # acceptance reads each parent's row once (children of a parent share it)
        self.parent_of = tree.parent[1:].to(device)  # (N - 1,): each draft's parent node
        self.child_depth = self.depth + 1  # (N,): the position a node's children verify
        self.speech_head = SpeechHead(model.head, eos, sampling)
        # root-to-leaf paths (R, D + 1), root first; -1 pads a short path (read as the root,
        # and never accepted: ``on_path``)
        self.on_path = tree.retrieve.to(device) >= 0  # (R, D + 1)
        self.paths = tree.retrieve.to(device).clamp_min(0)  # (R, D + 1)
        # a chain (one path, nodes 0 .. D in order) needs no search for its longest run: the
        # accepted drafts are its leading yeses, node i sits at depth i
        self.chain = tree.retrieve.tolist() == [list(range(tree.size))]
        self.chain_path = self.paths[0]  # (D + 1,)

    def verify(self, tokens: torch.Tensor, hidden: torch.Tensor, here: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One tree's decisions, on the device: tokens (N,) the root and drafts; hidden (N, C)
        the base's last hidden state at every node; here (D + 2, T) the draws of the positions
        the tree reaches (row d: the root's depth d) -> the accepted path (D + 1,) node
        indices, root first (entries past its length arbitrary), its length (0-d, root
        included), its last node (1,) and the bonus token ((1,): the base's own draw 0 after
        the path's last node)."""
        # every node's row is read: a parent's by its children, a leaf's for the bonus if the
        # path ends there. One head product, one set of log-probabilities and one sampling
        # for all rows: fewer operations per pass than reading parents first and the path's
        # end after (each small operation costs microseconds on a CPU, more than the rows)
        logits = self.speech_head(hidden)  # (N, V), divided by the temperature
        logprobs = processed_logprobs(logits, self.sampling, scaled=True)  # (N, V)
        # (N, T): the draws of each node's children's position (a chain's node i: i + 1)
        draws = here[1:] if self.chain else here[self.child_depth]
        samples = (keyed_samples(logprobs, draws)  # (N, T): T = tau draws
                   if self.rule.name == "tolerance" else None)
        yes = accepted_by_parent(self.rule, tokens[1:], self.parent_of, logprobs, draws,
                                 eos=self.eos, samples=samples)  # (N - 1,)
        if self.chain:
            accepted = yes.cumprod(0).sum()  # 0-d: the leading yeses
            path, length, end = self.chain_path, accepted + 1, accepted.view(1)
        else:
            ok = torch.ones(len(tokens), dtype=torch.bool, device=tokens.device)  # (N,)
            ok[1:] = yes
            path, length = longest_accepted(ok, self.paths, self.on_path)  # (D + 1,), 0-d
            end = last_node(path, length)  # (1,)
        if samples is not None:  # draw 0 at the end's children's position: the bonus
            return path, length, end, samples[:, 0].gather(0, end)
        bonus = keyed_samples(logprobs[end], draws[end, :1])[0]  # (1,): draw 0
        return path, length, end, bonus

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
        base_logprobs = processed_logprobs(
            self.speech_head(last[None]), self.sampling,
            scaled=True)[0]  # (V,)
        root = keyed_samples(base_logprobs, drawn[0, :1])  # (1,), on the device
        stopped = int(root) == self.eos
        forwards, out, accept_lengths = 1, [], [0 if stopped else 1]  # tokens per forward
        if not stopped:
            out.append(int(root))
        targets = torch.arange(1, D + 1, device=device)  # (D,): slots after the root, from c
        # every pass's mask, updated in place: 0 over the committed prefix (slots < c), the
        # tree's own mask over its slots [c, c + N), -inf past them (read with ``compile``)
        masks = torch.full((1, N, S), float("-inf"), dtype=self.bands[0].dtype,
                           device=device)  # (1, N, S)
        masks[0, :, :L] = 0  # the prompt
        opened = L  # slots before it are 0 in ``masks`` already
        while not stopped and len(out) < max_new:
            tokens = self.drafter.draft(last, root)  # (N,): the root, then drafts

            # verify: the root (the last emitted token) sits at slot and position c, the tree
            # in slots [c, c + N); the mask's last axis is the slots written so far, or with
            # ``compile`` the whole cache (a fixed shape)
            c = L + len(out) - 1
            masks[0, :, opened:c + N] = self.bands[c - opened]  # newly committed, then tree
            opened = c
            mask = masks if compile else masks[:, :, :c + N]  # (1, N, S) or (1, N, c + N)
            hidden = self.step(self.speech_offset + tokens[None], self.depth_row + c, mask,
                               cache_slots=slots[c:c + N] if compile else slice(c, c + N),
                               frames=table)[0]  # (N, C)
            forwards += 1
            path, length, end, bonus = self.verify(tokens, hidden,
                                                   drawn[len(out) - 1:len(out) + D + 1])

            root = bonus  # the next pass's root, and its input:
            last = hidden.index_select(0, end)[0]  # (1, C) -> (C,)
            # the pass's one host sync: what it emitted
            n, *read = torch.cat([length.view(1), path, tokens, bonus]).tolist()
            nodes, bonus_token = read[:D + 1], read[-1]
            path_tokens = [read[D + 1 + i] for i in nodes]  # the tokens of the path's nodes
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
