"""Text to speech with a trained model: ``decode`` (tokens), ``synthesize`` (a waveform)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vadusa.cli.common import (
    Subcommand,
    UserFacingError,
    batch_size_option,
    checkpoint_option,
    decoding_bundle,
    decoding_config,
    decoding_options,
    draft_bundle,
    guard,
    nar_option,
    nar_stage,
    vocoder_option,
    vocoder_path,
)
from vadusa.config import Config


def decode_options(parser: argparse.ArgumentParser) -> None:
    checkpoint_option(parser)
    parser.add_argument("--texts", required=True,
                        help="one `text` or `speaker<TAB>text` per line")
    parser.add_argument("--out", required=True, help="output jsonl: tokens, timing, forwards")
    decoding_options(parser)
    batch_size_option(parser)


@guard
def cmd_decode(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.decoding.run import decode_requests, read_texts, write_jsonl  # noqa: PLC0415

    decoding = decoding_config(cfg, args)
    bundle = decoding_bundle(cfg, args.checkpoint, decoding)
    records = list(decode_requests(bundle, read_texts(Path(args.texts)), decoding,
                                   draft=draft_bundle(bundle, decoding)))
    write_jsonl(Path(args.out), records)
    tokens = sum(len(r["tokens"]) for r in records)
    seconds = sum(r["seconds"] for r in records) / decoding.batch_size
    print(f"{len(records)} utterances, {tokens} tokens, {tokens / seconds:.1f} tokens/s "
          f"(batch {decoding.batch_size}) -> {args.out}")
    return 0


def synthesize_options(parser: argparse.ArgumentParser) -> None:
    checkpoint_option(parser)
    parser.add_argument("--text", required=True)
    parser.add_argument("--speaker", help="a training speaker (see the error for the list)")
    parser.add_argument("--prompt-wav", help="a recording of a new voice (needs --prompt-text)")
    parser.add_argument("--prompt-text", help="the transcript of --prompt-wav")
    vocoder_option(parser)
    nar_option(parser)
    decoding_options(parser)
    parser.add_argument("--out", required=True, help="output WAV file")


@guard
def cmd_synthesize(cfg: Config, args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from vadusa.data import audio  # noqa: PLC0415
    from vadusa.decoding.run import decode_prefix  # noqa: PLC0415
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.model.loading import resolve_speaker, synthesis_prefix  # noqa: PLC0415
    from vadusa.vocoder import load_vocoder, voice_for  # noqa: PLC0415

    device = resolve_device(cfg.device)
    decoding = decoding_config(cfg, args)
    bundle = decoding_bundle(cfg, args.checkpoint, decoding)
    prompt = None
    if args.prompt_wav or args.prompt_text:
        if not (args.prompt_wav and args.prompt_text):
            raise UserFacingError("--prompt-wav and --prompt-text go together")
        from vadusa.tokenizers.registry import load_tokenizer  # noqa: PLC0415

        wave, rate = audio.read(args.prompt_wav)
        prompt = (args.prompt_text, load_tokenizer(cfg, bundle.family, device)
                  .encode(wave, rate).tolist())
    prefix = synthesis_prefix(bundle, args.text, args.speaker, prompt,
                              cfg.decoding.max_tokens_per_symbol)
    speaker = resolve_speaker(bundle, args.speaker)
    if args.speaker is None and speaker is not None:
        print(f"no --speaker: speaking with the model's default voice, {speaker}")
    result = decode_prefix(bundle, prefix, decoding, draft=draft_bundle(bundle, decoding))
    if not result.tokens:
        raise UserFacingError("the model produced no speech tokens for this text")
    vocoder_file = vocoder_path(cfg, args, bundle.family)
    vocoder = load_vocoder(vocoder_file, device=device, family=bundle.family)
    nar = nar_stage(cfg, args, bundle.family, vocoder_file, device)
    voice = voice_for(vocoder, speaker)
    codes = np.asarray(result.tokens)  # (F,) codebook 1
    if nar is not None:  # every codebook (or, a mel stage, the mel they encode) -> audio
        wave, rate = nar.speak(args.text, speaker, codes, vocoder, voice)
    else:
        wave, rate = vocoder.decode(codes, voice)
    audio.write_wav(args.out, wave, rate)
    filled = (f", {nar.codebooks} codebooks" + (" (their mel, regressed)"
                                                if nar.decoding == "continuous" else "")
              if nar is not None else "")
    print(f"{len(result.tokens)} tokens in {result.seconds:.2f} s "
          f"({len(result.tokens) / result.seconds:.1f} tokens/s){filled} -> {args.out}")
    return 0


SUBCOMMANDS = {
    "decode": Subcommand("decode a list of texts to speech tokens (jsonl)",
                         decode_options, cmd_decode),
    "synthesize": Subcommand("text -> speech tokens -> waveform",
                             synthesize_options, cmd_synthesize),
}
