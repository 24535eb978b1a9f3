"""CLLM4Rec (Zhu et al., "Collaborative Large Language Model for Recommender Systems", WWW 2024).

    vocab.py      the extended vocabulary (one soft token per user and item) and the prompts of each view
    corpus.py     interactions and documents → padded token batches with next-token labels
    model.py      the model on a transformers causal LM: two embedding views, three losses, save / load
    train.py      pretraining (collaborative + content LM, tied) then the multinomial fine-tuning head
    recommend.py  one forward pass ranks the catalog; candidate reranking for the app
"""
from .corpus import TrainingData, build_training_data
from .model import CLLM4Rec, CLLMLoadError, load_cllm, prepare_backbone
from .recommend import CLLMRecommender
from .train import CLLMConfig, TrainLog, train_cllm
from .vocab import Prompter, SoftVocab

__all__ = ["CLLM4Rec", "CLLMConfig", "CLLMLoadError", "CLLMRecommender", "Prompter", "SoftVocab", "TrainLog",
           "TrainingData", "build_training_data", "load_cllm", "prepare_backbone", "train_cllm"]
