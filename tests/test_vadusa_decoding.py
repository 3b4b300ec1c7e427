"""VADUSA's invariants: tree attention, acceptance, cache compaction, tau = 1 equals AR."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from vadusa.decoding.acceptance import AcceptRule, accepted, accepted_by_parent
from vadusa.decoding.ar import ar_decode
from vadusa.decoding.sampling import SamplingConfig, keyed_uniforms, speech_only
from vadusa.decoding.tree import (
    TreeError,
    chain_tree,
    expected_length,
    full_tree,
    greedy_tree,
    load_tree,
    save_tree,
    tree_buffers,
)
from vadusa.decoding.vadusa import HydraDrafter, VadusaDecoder, longest_accepted
from vadusa.model.draft_heads import DraftHeads, HydraHeads
from vadusa.model.transformer import Transformer, TransformerConfig, causal_mask

OFFSET, V = 20, 13  # input ids [0, 20) text, [20, 33) speech; output: 10 units, bos, eos, pad
EOS = 11
ACC = [[0.6, 0.2, 0.1, 0.05], [0.5, 0.2, 0.1, 0.05], [0.4, 0.2, 0.1], [0.3, 0.1]]


def tiny(seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=OFFSET + V, output_size=V, dim=32, layers=2, heads=4,
                            max_seq=256)
    model = Transformer(cfg).double().eval()
    with torch.no_grad():
        model.head.weight.mul_(8)  # fairly peaky: drafts get accepted, not always
        model.head.weight[EOS].mul_(0.05)  # eos possible, not at every other step
    return model


TREES = {"chain3": chain_tree(3), "full2x2": full_tree(2, 2), "greedy12": greedy_tree(ACC, 12),
         "greedy30": greedy_tree(ACC, 30)}


# -- trees -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TREES))
def test_every_node_sees_exactly_the_root_its_ancestors_and_itself(name: str) -> None:
    tree = tree_buffers(TREES[name])
    nodes = {(): 0} | {p: i + 1 for i, p in enumerate(tree.paths)}
    for p, i in nodes.items():
        expected = {nodes[p[:d]] for d in range(len(p) + 1)}
        assert set(torch.nonzero(tree.mask[i]).flatten().tolist()) == expected
        assert int(tree.depth[i]) == len(p)
        if p:
            assert int(tree.parent[i]) == nodes[p[:-1]]
            assert (int(tree.head[i]), int(tree.rank[i])) == (len(p) - 1, p[-1])
    # every root-to-leaf path appears once in retrieve, and only those
    leaves = {p for p in tree.paths if not any(q[:-1] == p for q in tree.paths)}
    rows = {tuple(tree.paths[i - 1] for i in row if i > 0)[-1] for row in
            tree.retrieve.tolist()}
    assert rows == leaves


def test_greedy_tree_takes_the_most_valuable_nodes() -> None:
    paths = greedy_tree(ACC, 10)
    assert len(paths) == 10 and tree_buffers(paths).size == 11
    # brute force: the 10 highest-valued paths among all (valid) ones
    every = [p for d in range(1, 5) for p in full_tree(4, d) if len(p) == d
             and all(r < len(ACC[k]) for k, r in enumerate(p))]
    value = {p: math.prod(ACC[k][r] for k, r in enumerate(p)) for p in every}
    best = sorted(value.values(), reverse=True)[:10]
    assert sorted((value[p] for p in paths), reverse=True) == pytest.approx(best)
    assert expected_length(paths, ACC) == pytest.approx(1 + sum(best))
    assert expected_length(chain_tree(2), ACC) == pytest.approx(1 + 0.6 + 0.6 * 0.5)


def test_bad_trees_are_refused(tmp_path) -> None:
    with pytest.raises(TreeError, match="parent"):
        tree_buffers([(0,), (1, 0)])
    with pytest.raises(TreeError, match="twice"):
        tree_buffers([(0,), (0,)])
    with pytest.raises(TreeError, match="does not exist"):
        load_tree(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{\"nodes\": 3}")
    with pytest.raises(TreeError, match="not a tree"):
        load_tree(tmp_path / "bad.json")
    saved = save_tree(tmp_path / "t.json", TREES["greedy12"], expected_length=2.1, tau=3)
    paths, blob = load_tree(saved)
    assert paths == sorted(TREES["greedy12"]) and blob["tau"] == 3 and blob["nodes"] == 12


def test_tree_pass_gives_each_node_the_logits_of_its_own_path() -> None:
    """One forward over the tree (with a cached prefix) = recomputing prefix + path, per node."""
    model = tiny()
    tree = tree_buffers(TREES["greedy30"])
    prefix = torch.randint(0, OFFSET + V, (7,))
    tokens = torch.randint(0, 10, (tree.size,))  # a speech token per node
    L, N = len(prefix), tree.size
    model.setup_cache(1, L + N)
    slots = torch.arange(L + N)
    pos = torch.arange(L)[None]
    with torch.no_grad():
        model(prefix[None], pos, (slots[None, :] <= pos[0, :, None])[None])
        mask = torch.zeros(1, N, L + N, dtype=torch.bool)
        mask[0, :, :L] = True
        mask[0, :, L:] = tree.mask
        got = model(OFFSET + tokens[None], (L + tree.depth)[None], mask,
                    cache_slots=slots[L:])[0]  # (N, V)
        model.clear_cache()
        for i, p in enumerate(((),) + tree.paths):
            path_nodes = [0] + [1 + tree.paths.index(p[:d]) for d in range(1, len(p) + 1)]
            seq = torch.cat([prefix, OFFSET + tokens[path_nodes]])
            T = len(seq)
            want = model(seq[None], torch.arange(T)[None], causal_mask(T)[None])[0, -1]
            assert torch.allclose(got[i], want, atol=1e-10)


# -- acceptance --------------------------------------------------------------------------------

def test_tolerance_acceptance_rate_is_one_minus_one_minus_p_to_the_tau() -> None:
    probs = torch.tensor([0.2, 0.5, 0.3] + [0.0] * 3, dtype=torch.float64)
    logprobs = probs.log()[None]  # (1, V)
    trials = 4000
    for tau in (1, 2, 3, 4):
        rule = AcceptRule("tolerance", tau=tau)
        drawn = keyed_uniforms(7, 0, range(trials), tau)  # (trials, tau)
        hits = sum(bool(accepted(rule, torch.tensor([0]), logprobs, drawn[t:t + 1])[0])
                   for t in range(trials))
        want = 1 - (1 - 0.2) ** tau
        # 4 standard errors; accepting with probability tau * p or p would miss by > 0.08
        assert abs(hits / trials - want) < 4 * math.sqrt(want * (1 - want) / trials)


def test_typical_acceptance_thresholds_on_entropy() -> None:
    peaky = torch.tensor([0.97, 0.01, 0.01, 0.01], dtype=torch.float64).log()
    flat = torch.full((4,), 0.25, dtype=torch.float64).log()
    rule = AcceptRule("typical", epsilon=0.09, delta=0.3)
    noise = torch.zeros(2, 1, dtype=torch.float64)
    # peaky: threshold = min(0.09, 0.3 * exp(-H)) ~ 0.26 * ... -> 0.01 is rejected
    assert accepted(rule, torch.tensor([1, 0]), torch.stack([peaky, peaky]), noise).tolist() \
        == [False, True]
    # flat: H = log 4, threshold = min(0.09, 0.075) -> 0.25 passes
    assert accepted(rule, torch.tensor([2]), flat[None], noise[:1]).tolist() == [True]


@pytest.mark.parametrize("rule", [AcceptRule("tolerance", tau=1), AcceptRule("tolerance", tau=3),
                                  AcceptRule("typical")], ids=["tau1", "tau3", "typical"])
def test_acceptance_once_per_parent_decides_exactly_as_per_node(rule: AcceptRule) -> None:
    """The lean pass reads each parent's distribution and draws once; its decisions must be
    those of the per-node rule on the same keys, node for node."""
    tree = tree_buffers(greedy_tree(ACC, 16))
    parents = sorted(set(tree.parent[1:].tolist()))
    parent_of = torch.tensor([parents.index(q) for q in tree.parent[1:].tolist()])
    gen = torch.Generator().manual_seed(3)
    decisions = 0
    for trial in range(200):
        logprobs = (3 * torch.randn(len(parents), V, generator=gen, dtype=torch.float64)
                    ).log_softmax(-1)  # (P, V)
        noise = keyed_uniforms(1, trial, range(len(parents)), rule.draws)  # (P, T)
        tokens = torch.randint(0, V, (tree.size - 1,), generator=gen)
        per_node = accepted(rule, tokens, logprobs[parent_of], noise[parent_of])
        lean = accepted_by_parent(rule, tokens, parent_of, logprobs, noise)
        assert torch.equal(lean, per_node), trial
        decisions += int(per_node.sum())
    assert decisions > 100  # some drafts were accepted: the comparison is not all-False


def test_longest_accepted_run_wins() -> None:
    tree = tree_buffers([(0,), (1,), (0, 0), (1, 0), (1, 0, 0)])
    node = {(): 0} | {p: i + 1 for i, p in enumerate(tree.paths)}
    paths, on_path = tree.retrieve.clamp_min(0), tree.retrieve >= 0

    def run(ok: torch.Tensor) -> list[int]:
        path, length = longest_accepted(ok, paths, on_path)
        return path[:int(length)].tolist()

    ok = torch.ones(6, dtype=torch.bool)
    ok[node[(0, 0)]] = False
    assert run(ok) == [node[p] for p in ((), (1,), (1, 0), (1, 0, 0))]
    ok[node[(1,)]] = False
    assert run(ok) == [0, node[(0,)]]
    ok[node[(0,)]] = False
    assert run(ok) == [0]  # nothing accepted: the root alone
    ok[:] = True
    ok[node[(1, 0, 0)]] = False  # two runs of 3: (0,)->(0, 0) and (1,)->(1, 0); first wins
    assert run(ok) == [0, node[(0,)], node[(0, 0)]]


def test_the_top_candidates_chain_comes_first() -> None:
    """Nodes are in depth-first order, so the path of every head's top candidate, the one
    accepted most often, sits in the slots right after the root and needs no compaction."""
    tree = tree_buffers([(1,), (0,), (0, 1), (0, 0), (2,), (0, 0, 0), (1, 0)])
    assert tree.paths[:3] == ((0,), (0, 0), (0, 0, 0))
    assert all(tree.parent[i] < i for i in range(1, tree.size))  # parents before children


# -- the decoder -------------------------------------------------------------------------------

class OracleHeads(nn.Module):
    """Draft heads that know the AR output: rank 0 is right with probability 0.6 per head,
    else a wrong token, and the true token then sits at rank 1 or deeper. They find their
    position by matching the hidden state against the AR sequence's hidden states."""

    def __init__(self, n_heads: int, reference_hidden: torch.Tensor, tokens: list[int],
                 seed: int) -> None:
        super().__init__()
        self.n, self.ref, self.tokens, self.seed = n_heads, reference_hidden, tokens, seed

    def __len__(self) -> int:
        return self.n

    def stacked(self, n_heads: int | None = None) -> OracleHeads:  # the decoder's fast path
        return self

    def draft(self, hidden: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        logits = self(hidden[None, None])[:, 0, 0]  # (C,) -> (K, V)
        return logits if bias is None else logits + bias

    def forward(self, hidden: torch.Tensor, n_heads: int | None = None) -> torch.Tensor:
        p = int((self.ref - hidden[0, -1]).norm(dim=-1).argmin())  # output index p - 1 + 1
        logits = torch.zeros(self.n, 1, 1, V, dtype=torch.float64)
        for k in range(self.n):
            rng = random.Random(f"{self.seed}-{p}-{k}")
            order = list(range(V))
            rng.shuffle(order)
            target = p + 1 + k  # the output index head k guesses from hidden position p
            if target < len(self.tokens):
                true = self.tokens[target]
                order.remove(true)
                order.insert(0 if rng.random() < 0.6 else rng.randrange(1, 4), true)
            logits[k, 0, 0, order] = torch.arange(V, 0, -1, dtype=torch.float64)
        return logits


def reference_states(model: Transformer, prefix: torch.Tensor, tokens: list[int]
                     ) -> torch.Tensor:
    """Hidden states (L + T, C) of the prefix and the AR tokens, hidden[L - 1 + j] having
    produced output j."""
    seq = torch.cat([prefix, OFFSET + torch.tensor(tokens, dtype=torch.long)])
    T = len(seq)
    with torch.no_grad():
        h = model.hidden(seq[None], torch.arange(T)[None], causal_mask(T)[None])[0]
    return h[len(prefix) - 1:]  # row j produced output j


@pytest.mark.parametrize("sampling", [SamplingConfig(temperature=1.0),
                                      SamplingConfig(temperature=0.0),
                                      SamplingConfig(temperature=0.9, top_k=6)],
                         ids=["t1", "greedy", "topk"])
def test_tau_one_reproduces_ar_decoding_token_for_token(sampling: SamplingConfig) -> None:
    model = tiny(2)
    gen = torch.Generator().manual_seed(5)
    total_accepted = 0
    for utt in range(21):
        prefix = torch.randint(0, OFFSET, (int(torch.randint(4, 12, (1,), generator=gen)),),
                               generator=gen)
        ar = ar_decode(model, prefix, speech_offset=OFFSET, eos=EOS, max_new=40,
                       sampling=sampling, seed=11, utterance=utt)
        ref = reference_states(model, prefix, ar.tokens)
        name = sorted(TREES)[utt % len(TREES)]
        tree = tree_buffers(TREES[name])
        heads = OracleHeads(4, ref, ar.tokens, seed=utt)
        n_heads = 4 if utt % 2 else tree.max_depth  # all heads, or just as many as the tree
        got = VadusaDecoder(model, heads, tree, AcceptRule("tolerance", tau=1), sampling,
                            speech_offset=OFFSET, eos=EOS, n_heads=n_heads
                            ).decode(prefix, max_new=40, seed=11, utterance=utt)
        assert got.tokens == ar.tokens, (utt, name)
        assert got.stopped == ar.stopped
        assert sum(got.accept_lengths) == len(got.tokens)
        assert got.forwards == len(got.accept_lengths)
        total_accepted += len(got.tokens) - (got.forwards - 1)
    assert total_accepted > 100  # drafts were really accepted, not just bonus tokens


class EosHeads(nn.Module):
    """Draft heads whose first guess is always eos, then units 0, 1, 2, ...: every tree
    drafts the end of speech at every depth."""

    def __init__(self, n_heads: int) -> None:
        super().__init__()
        self.n = n_heads

    def __len__(self) -> int:
        return self.n

    def stacked(self, n_heads: int | None = None) -> EosHeads:
        return self

    def draft(self, hidden: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        logits = -torch.arange(V, dtype=torch.float64).expand(self.n, V).clone()  # (K, V)
        logits[:, EOS] = 1.0
        return logits if bias is None else logits + bias


@pytest.mark.parametrize("tau", [1, 3, 4])
def test_under_tolerance_speech_ends_where_ar_ends_it(tau: int) -> None:
    """A base whose next-token distribution never changes (uniform over 10 units and eos:
    its final norm is zeroed) ends an utterance at the first position whose draw 0 is eos.
    With heads that draft eos at every depth, tolerance would accept it whenever it is among
    tau samples (1 - (10/11)^tau per position, 25 % at tau 3 against AR's 9 %); with the end
    of speech following the base's own draw, every utterance has exactly AR's length."""
    model = tiny(4)
    with torch.no_grad():
        model.norm.weight.zero_()
    tree = tree_buffers(greedy_tree(ACC, 12))
    decoder = VadusaDecoder(model, EosHeads(4), tree, AcceptRule("tolerance", tau=tau),
                            SamplingConfig(), speech_offset=OFFSET, eos=EOS)
    prefix = torch.randint(0, OFFSET, (5,), generator=torch.Generator().manual_seed(0))
    ar_lengths, lengths, accepted_drafts = [], [], 0
    for utt in range(60):
        ar = ar_decode(model, prefix, speech_offset=OFFSET, eos=EOS, max_new=200,
                       sampling=SamplingConfig(), seed=3, utterance=utt)
        got = decoder.decode(prefix, max_new=200, seed=3, utterance=utt)
        assert got.stopped == ar.stopped
        ar_lengths.append(len(ar.tokens))
        lengths.append(len(got.tokens))
        accepted_drafts += len(got.tokens) - (got.forwards - 1)
        if tau == 1:
            assert got.tokens == ar.tokens
    assert lengths == ar_lengths
    assert 5 < sum(ar_lengths) / len(ar_lengths) < 20  # geometric, mean 10: the test has teeth
    if tau > 1:  # drafts were accepted through the tolerance, not only bonus tokens
        assert accepted_drafts > 0


def test_real_draft_heads_decode_and_tolerance_accepts_more() -> None:
    model = tiny(3)
    torch.manual_seed(0)
    heads = DraftHeads(3, 32, V, model.head).double()
    tree = tree_buffers(greedy_tree(ACC[:3], 10))
    prefix = torch.randint(0, OFFSET, (6,))
    lengths = {}
    for tau in (1, 4):
        decoder = VadusaDecoder(model, heads, tree, AcceptRule("tolerance", tau=tau),
                                SamplingConfig(), speech_offset=OFFSET, eos=EOS)
        tokens = forwards = 0
        for utt in range(10):
            got = decoder.decode(prefix, max_new=50, seed=1, utterance=utt)
            assert all(0 <= t < EOS - 1 for t in got.tokens)
            tokens, forwards = tokens + len(got.tokens), forwards + got.forwards
        lengths[tau] = tokens / forwards
    assert lengths[4] > lengths[1]
    with pytest.raises(ValueError, match="deep"):
        VadusaDecoder(model, DraftHeads(2, 32, V, model.head).double(), tree,
                      AcceptRule(), SamplingConfig(), speech_offset=OFFSET, eos=EOS)


def test_compaction_keeps_exactly_the_accepted_paths_keys_and_values() -> None:
    """After a verification step, the committed cache equals a plain prefill of the prefix and
    the accepted tokens (and the rejected nodes' entries are gone from those slots)."""
    model = tiny(4)
    tree = tree_buffers([(0,), (1,), (0, 0), (0, 1), (1, 0)])
    prefix = torch.randint(0, OFFSET, (5,))
    node = {(): 0} | {p: i + 1 for i, p in enumerate(tree.paths)}
    tokens = torch.tensor([3, 4, 5, 6, 7, 8])  # one per node, in node order
    L, N = len(prefix), tree.size
    S = L + N
    slots = torch.arange(S)
    model.setup_cache(1, S)
    with torch.no_grad():
        pos = torch.arange(L)[None]
        model(prefix[None], pos, (slots[None, :] <= pos[0, :, None])[None])
        mask = torch.zeros(1, N, S, dtype=torch.bool)
        mask[0, :, :L] = True
        mask[0, :, L:] = tree.mask
        model(OFFSET + tokens[None], (L + tree.depth)[None], mask, cache_slots=slots[L:])
        run = [0, node[(1,)], node[(1, 0)]]  # off the top chain: entries must move
        model.compact_cache(torch.tensor(run[1:]) + L, torch.arange(1, len(run)) + L)
        kept = [(b.attn.cache.k[:, :, :L + len(run)].clone(),
                 b.attn.cache.v[:, :, :L + len(run)].clone()) for b in model.blocks]
        seq = torch.cat([prefix, OFFSET + tokens[run]])
        T = len(seq)
        model.setup_cache(1, T)
        model(seq[None], torch.arange(T)[None], causal_mask(T)[None])
        for (k, v), block in zip(kept, model.blocks, strict=True):
            assert torch.allclose(k, block.attn.cache.k, atol=1e-12)
            assert torch.allclose(v, block.attn.cache.v, atol=1e-12)
    model.clear_cache()


# -- Hydra heads -------------------------------------------------------------------------------

def hydra(model: Transformer, n_heads: int = 3, seed: int = 0) -> HydraHeads:
    """Hydra heads with trained-looking weights (not the zero/copy initialisation)."""
    torch.manual_seed(seed)
    heads = HydraHeads(n_heads, 32, V, model.head, model.embed.weight[OFFSET:OFFSET + V]
                       ).double()
    with torch.no_grad():
        heads.embed.weight.normal_(0, 1)
        for head in heads.heads:
            head.linear.weight.normal_(0, 0.3)
    return heads


def path_logits(heads: HydraHeads, k: int, hidden: torch.Tensor, path: torch.Tensor
                ) -> torch.Tensor:
    """Head k on one path through the teacher-forced forward: hidden (C,), path (k,) output
    ids -> (V,). Position 0 of a k-long sequence reads tokens 0..k-1."""
    return heads(hidden.expand(1, k, -1), tokens=path[None])[k - 1, 0, 0]


def test_hydra_heads_start_as_medusa_and_read_exactly_the_tokens_before_their_guess() -> None:
    head = nn.Linear(8, 5, bias=False)
    fresh = HydraHeads(3, 8, 5, head)
    x, tokens = torch.randn(2, 6, 8), torch.randint(0, 5, (2, 6))
    out = fresh(x, tokens=tokens)  # (K, B, T, V)
    assert out.shape == (3, 2, 6, 5)
    for k in range(3):  # zero-initialised: every head starts as the base head, as MEDUSA's
        torch.testing.assert_close(out[k], head(x))
    with pytest.raises(ValueError, match="tokens"):
        fresh(x)

    heads = hydra(tiny(), n_heads=3)
    x, tokens = torch.randn(1, 8, 32, dtype=torch.float64), torch.randint(0, 10, (1, 8))
    out = heads(x, tokens=tokens)
    for k in (1, 2, 3):  # head k at position 2 reads tokens 2 .. 2 + k - 1, nothing else
        for j in range(8):
            changed = tokens.clone()
            changed[0, j] = (changed[0, j] + 1) % 10
            moved = not torch.allclose(heads(x, tokens=changed)[k - 1, 0, 2], out[k - 1, 0, 2])
            assert moved == (2 <= j < 2 + k), (k, j)
        # one path at a time (decoding) computes what the teacher-forced pass computes, and
        # so do the packed heads (the block's hidden share once, the tokens' by table lookup)
        torch.testing.assert_close(path_logits(heads, k, x[0, 2], tokens[0, 2:2 + k]),
                                   out[k - 1, 0, 2])
        packed = heads.stacked(3)
        share = packed.hidden_part(x[0, 2])[k - 1]  # (C,): head k's hidden-state share
        torch.testing.assert_close(packed.step(k, x[0, 2], share, tokens[:, 2:2 + k]),
                                   out[k - 1, 0, 2][None])
    # past the end, -100 (no target) reads as pad
    padded = tokens.clone()
    padded[0, -1] = -100
    torch.testing.assert_close(heads(x, tokens=padded)[0, 0, -1],
                               path_logits(heads, 1, x[0, -1], torch.tensor([V - 1])))


def test_hydra_tree_drafts_each_nodes_top_ranks_given_its_own_path() -> None:
    model = tiny(1)
    heads = hydra(model, n_heads=3, seed=1)
    tree = tree_buffers(greedy_tree(ACC[:3], 16))
    drafter = HydraDrafter(heads, tree, EOS)
    hidden, root = torch.randn(32, dtype=torch.float64), 4
    tokens = drafter.draft(hidden, root)  # (N,): the root, then the drafts
    assert int(tokens[0]) == root
    parents = tree.parent.tolist()
    siblings_differ = False
    for i in range(1, tree.size):
        path, node = [], i
        while node:
            node = parents[node]
            path.insert(0, int(tokens[node]))  # root .. parent
        logits = path_logits(heads, len(path), hidden, torch.tensor(path))
        want = speech_only(logits, EOS).topk(int(tree.rank[i]) + 1).indices[-1]
        assert int(tokens[i]) == int(want), i
        same_rank = [j for j in range(1, tree.size) if tree.rank[j] == tree.rank[i]
                     and tree.depth[j] == tree.depth[i] and parents[j] != parents[i]]
        siblings_differ |= any(int(tokens[j]) != int(tokens[i]) for j in same_rank)
    assert siblings_differ  # the path matters: the same rank under two parents differs


@pytest.mark.parametrize("kind", ["medusa", "hydra"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_tau_one_with_real_heads_reproduces_ar_decoding(dtype: torch.dtype, kind: str) -> None:
    model = tiny(2).to(dtype)
    if kind == "hydra":
        heads = hydra(tiny(2), n_heads=3, seed=2).to(dtype)
    else:
        torch.manual_seed(2)
        heads = DraftHeads(3, 32, V, model.head).to(dtype)
        with torch.no_grad():
            for head in heads.heads:
                head.block.linear.weight.normal_(0, 0.3)
    tree = tree_buffers(greedy_tree(ACC[:3], 12))
    decoder = VadusaDecoder(model, heads, tree, AcceptRule("tolerance", tau=1),
                            SamplingConfig(), speech_offset=OFFSET, eos=EOS)
    gen = torch.Generator().manual_seed(6)
    drafted = 0
    for utt in range(12):
        prefix = torch.randint(0, OFFSET, (7,), generator=gen)
        ar = ar_decode(model, prefix, speech_offset=OFFSET, eos=EOS, max_new=40,
                       sampling=SamplingConfig(), seed=5, utterance=utt)
        got = decoder.decode(prefix, max_new=40, seed=5, utterance=utt)
        assert got.tokens == ar.tokens and got.stopped == ar.stopped, utt
        drafted += len(got.tokens) - (got.forwards - 1)
    assert drafted > 0  # some drafts were accepted, not only bonus tokens


@pytest.mark.parametrize("kind", ["medusa", "hydra"])
def test_compiled_fixed_shape_passes_emit_the_eager_tokens(kind: str) -> None:
    """Compiled decoding (``--compile``, decoding/static.py): a cache of one length, masks
    over all of it, slots written by index and one traced graph per step width. Dynamo
    traces the AR step and the tree pass with fullgraph=True (a graph break fails the test)
    and runs them eagerly; the tokens are those of the eager decoders, for AR and for tau 1
    and 3, and utterances of other lengths reuse the graphs instead of compiling new ones."""
    from torch._dynamo.utils import counters  # noqa: PLC0415

    torch._dynamo.reset()
    model = tiny(3).float()
    heads = (hydra(tiny(3), n_heads=3, seed=4) if kind == "hydra"
             else DraftHeads(3, 32, V, model.head)).float()
    tree = tree_buffers(greedy_tree(ACC[:3], 10))
    gen = torch.Generator().manual_seed(8)
    graphs, drafted = [], 0
    for utt in range(3):
        prefix = torch.randint(0, OFFSET, (5 + 2 * utt,), generator=gen)  # lengths differ
        kwargs = dict(speech_offset=OFFSET, eos=EOS, max_new=30 + 5 * utt,
                      sampling=SamplingConfig(), seed=2, utterance=utt)
        ar = ar_decode(model, prefix, **kwargs)
        assert ar_decode(model, prefix, **kwargs, compile="eager").tokens == ar.tokens
        for tau in (1, 3):
            eager, compiled = (
                VadusaDecoder(model, heads, tree, AcceptRule("tolerance", tau=tau),
                              SamplingConfig(), speech_offset=OFFSET, eos=EOS, compile=mode)
                .decode(prefix, max_new=30 + 5 * utt, seed=2, utterance=utt)
                for mode in ("", "eager"))
            assert compiled.tokens == eager.tokens, (utt, tau)
            assert compiled.accept_lengths == eager.accept_lengths
            if tau == 1:
                assert eager.tokens == ar.tokens
                drafted += len(compiled.tokens) - (compiled.forwards - 1)
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] >= 2  # the AR step and the tree pass were traced
    assert graphs[-1] == graphs[0]  # no new graph for other prefix and output lengths
    assert drafted > 0  # the compiled passes accepted drafts, not only bonus tokens
