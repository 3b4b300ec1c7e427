# WER of VADUSA decoding (heads -> unit vocoder -> Whisper judge) on the test split, per head
# mode and tolerance tau; the targets ask for heads.eval_taus.


rule evaluate_vadusa:
    input:
        model=rules.train_heads.output,
        vocoder=vocoder_for,
    output:
        f"{RESULTS}/eval/{{family}}/vadusa-{{mode}}-tau{{tau}}/test/metrics.json",
    params:
        config_digest=CFG.section_hash("decoding", "judge", exclude=NOT_DRAFT),
    log:
        f"{LOGS}/evaluate_{{family}}_vadusa_{{mode}}_tau{{tau}}_test.log",
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} --method vadusa --tau {wildcards.tau} "
        "--batch-size 1 "
        "--out {RESULTS}/eval/{wildcards.family}/vadusa-{wildcards.mode}-tau{wildcards.tau}/test "
        "> {log} 2>&1"
