"""Recipe for the bundled tiny VLM: a real LLaVA (CLIP vision tower + Llama text model) of a few million
parameters, its byte-level BPE tokenizer and its processor.

Kept in the package (not only in the training script) so that tests can build the same architecture with
random weights in seconds, and so the recipe that produced the shipped weights is readable next to them.
"""
from __future__ import annotations

from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

IMAGE_TOKEN = "<image>"
PAD, BOS, EOS = "<pad>", "<s>", "</s>"
# 96-pixel images in 16-pixel patches: 36 image tokens keep a training step cheap on one CPU thread while
# glyphs (8-14 px) stay legible.
IMAGE_SIZE, PATCH_SIZE = 96, 16
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2  # CLS dropped by the "default" feature strategy
# Chat template: "<image>question\nAnswer:" then " answer</s>". Accepts plain-string or list content.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}<image>{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}{{ '\\nAnswer:' }}"
    "{%- else -%}"
    "{%- if message['content'] is string -%}{{ ' ' + message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}{{ ' ' + part['text'] }}{%- endfor -%}{%- endif -%}"
    "{{ '</s>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 640) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained offline on ``corpus``; ``<image>`` is a single special token."""
    tok = Tokenizer(models.BPE())
    # Digits stay single tokens so reading "417" is three decisions, as OCR needs, not one rare token.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS, IMAGE_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS,
        extra_special_tokens={"image_token": IMAGE_TOKEN}, padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_processor(tokenizer: PreTrainedTokenizerFast) -> LlavaProcessor:
    """LLaVA processor with a PIL-only CLIP image processor (torchvision is not needed)."""
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    return LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE, image_token=IMAGE_TOKEN,
    )


def build_config(tokenizer: PreTrainedTokenizerFast, text_hidden: int = 192, text_layers: int = 4,
                 vision_hidden: int = 128, vision_layers: int = 3) -> LlavaConfig:
    """A few-million-parameter LLaVA config whose token ids come from ``tokenizer``."""
    vision = CLIPVisionConfig(
        hidden_size=vision_hidden, intermediate_size=4 * vision_hidden, num_hidden_layers=vision_layers,
        num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, projection_dim=vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=3 * text_hidden,
        num_hidden_layers=text_layers, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=256, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-1, vision_feature_select_strategy="default", image_seq_length=IMAGE_TOKENS,
        projector_hidden_act="gelu", tie_word_embeddings=True,
    )


def build_model(config: LlavaConfig) -> LlavaForConditionalGeneration:
    """Randomly initialised model (eager attention: simple and identical on every machine)."""
    model = LlavaForConditionalGeneration._from_config(config, attn_implementation="eager")
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.bos_token_id = config.text_config.bos_token_id
    return model
