# The unit vocoder per family (units -> mel network, then the pretrained HiFi-GAN) and the
# resynthesis ceiling: audio -> tokens -> audio -> Whisper WER, on the test split and on real
# human recordings (LibriVox clips of Debian's pocketsphinx-testdata). The acoustic families need
# no vocoder training: the encodec codec decodes codebook-1 tokens itself
# (vadusa.tokenizers.codec); melrvq's residual k-means sums its codes into mels for HiFi-GAN.


def vocoder_for(wildcards):
    """What turns a family's tokens into audio: its unit vocoder, (encodec) its codec, or
    (melrvq) its residual k-means, which HiFi-GAN decodes."""
    if wildcards.family == "encodec":
        return codec_checkpoint()
    if wildcards.family == "melrvq":
        return PLAN.kmeans(wildcards.family)
    return PLAN.vocoder(wildcards.family)


def vocoding(wildcards):
    """The inputs that turn a model's tokens into audio: the vocoder and, for a family whose
    tokens keep every codebook (NAR_FAMILIES), the NAR stage that fills codebooks 2..N."""
    files = {"vocoder": vocoder_for(wildcards)}
    if wildcards.family in NAR_FAMILIES:
        files["nar"] = PLAN.nar(wildcards.family)
    return files


def nar_argument(wildcards, input):
    """The NAR stage on the command line: the family's, or none (codebook 1 is all there is)."""
    return f"--nar {input.nar}" if wildcards.family in NAR_FAMILIES else "--nar none"


def speaker_dvectors(wildcards):
    """The corpus's d-vectors, which the unit vocoder reads only when it is conditioned on them
    (vocoder.speaker_conditioning dvector; `vadusa train-vocoder` finds them in the corpus)."""
    if CFG.vocoder.speaker_conditioning == "dvector":
        return list(rules.speaker_embeddings.output)
    return []


rule train_vocoder:
    input:
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
        dvectors=speaker_dvectors,
    output:
        PLAN.vocoder(),
    wildcard_constraints:
        family=UNIT_FAMILIES,
    params:
        config_digest=PLAN.digest("train_vocoder"),
    log:
        PLAN.log("train_vocoder_{family}"),
    threads: PAIRED
    # the longest job on the default target's critical path (22 min on 2 cores): it starts as
    # soon as the tokens exist, before the copy synthesis and the corpus QA, which nothing
    # waits for and which then fill the core the aligner leaves free (docs/budget.md)
    priority: 10
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "vadusa train-vocoder --config {RESOLVED} --family {wildcards.family} "
        f"--corpus {{CORPUS}} --tokens {in_shell(PLAN.tokens())} "
        f"--out {in_shell(PLAN.vocoder_dir())} > {{log}} 2>&1"


def resynthesis_source(wildcards):
    return "--librivox" if wildcards.source == "librivox" else f"--split {wildcards.source}"


rule resynthesize:
    input:
        vocoder=vocoder_for,
        tokenizer=tokenizer_files,
    output:
        PLAN.metrics(PLAN.resynthesis()),
    wildcard_constraints:
        source="test|dev|librivox",
    params:
        source=resynthesis_source,
        config_digest=PLAN.digest("resynthesize"),
    log:
        PLAN.log("resynthesize_{family}_{source}"),
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa resynthesize --config {RESOLVED} --set judge.threads={threads} "
        "--family {wildcards.family} {params.source} "
        "--corpus {CORPUS} --vocoder {input.vocoder} "
        f"--out {in_shell(PLAN.resynthesis())} > {{log}} 2>&1"


rule copy_synthesis:
    """HiFi-GAN's own ceiling: each recording's mel straight through the generator, no units.
    Next to a family's resynthesis it says what the units and unit-to-mel lose."""
    input:
        manifests=rules.prepare_corpus.output.manifests,
    output:
        PLAN.metrics(PLAN.copy_synthesis()),
    wildcard_constraints:
        source="test|dev|librivox",
    params:
        source=resynthesis_source,
        config_digest=PLAN.digest("copy_synthesis"),
    log:
        PLAN.log("copy_synthesis_{source}"),
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa resynthesize --config {RESOLVED} --set judge.threads={threads} "
        "--copy {params.source} --corpus {CORPUS} "
        f"--out {in_shell(PLAN.copy_synthesis())} > {{log}} 2>&1"


rule resynthesis:
    input:
        expand(rules.resynthesize.output, family=FAMILIES, source=["test", "librivox"]),
        expand(rules.copy_synthesis.output, source=["test", "librivox"]),
