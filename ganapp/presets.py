"""Named starting points for the app's preset menu: a few settings each, the rest default.

Each preset is a partial GANConfig as a plain dict; `preset_config` fills in the defaults
and validates, so a wrong preset fails loudly in the tests rather than in a classroom.
Every technique preset has a vanilla partner ("ring8: vanilla", "digits: vanilla") with
the same data set, seed and steps, so the two runs can be compared side by side.

PRESET_NOTES says, in one sentence each, what the pair showed when measured over seeds
0-2 (the preset itself uses seed 0). The numbers come from docs/results.md and can be
rerun with `python scripts/check_presets.py --seeds 3`. Where a technique does not help
on our data sets, its note says so: the presets show what each technique does here,
not what we would like it to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import GANConfig

# Measured on the project's 2 shared cores, one process per run: 3-8 s a ring8 run, 7-12 s
# a digits run (evaluation included; 2 December 2026). Digits use seed 1, chosen when
# minibatch discrimination still summed and helped in seeds 1-2 only (it now helps in every seed).
_RING8 = {"data": "ring8", "steps": 2000, "seed": 0}
_DIGITS = {"data": "digits", "steps": 1000, "seed": 1, "sample_every": 50}
# The classic mode-collapse setting: G without batch norm, slower learning rates.
_RING8_NO_BN = {**_RING8, "generator_batch_norm": False, "lr_generator": 3e-4, "lr_discriminator": 3e-4}

PRESETS: dict[str, dict[str, Any]] = {
    "ring8: vanilla": {**_RING8},
    "ring8: virtual batch norm": {**_RING8, "virtual_batch_norm": True},
    "ring8: feature matching": {**_RING8, "feature_matching": True},
    "ring8: label smoothing 0.9": {**_RING8, "label_smoothing": 0.9},
    "ring8: historical averaging": {**_RING8, "historical_averaging": "uniform"},
    "ring8: historical averaging 0.1 (too strong)": {**_RING8, "historical_averaging": "uniform",
                                                     "historical_averaging_weight": 0.1},
    "ring8: minibatch discrimination": {**_RING8, "minibatch_discrimination": True},
    "ring8: minibatch discrimination, summed (the paper's formula)": {
        **_RING8, "minibatch_discrimination": True, "minibatch_reduction": "sum"},
    "ring8: the paper's methods (MBD + LS + VBN)": {
        **_RING8, "minibatch_discrimination": True, "label_smoothing": 0.9, "virtual_batch_norm": True},
    "ring8, G without batch norm: vanilla": {**_RING8_NO_BN},
    "ring8, G without batch norm: minibatch discrimination": {**_RING8_NO_BN, "minibatch_discrimination": True},
    "ring8, G without batch norm: label smoothing 0.9": {**_RING8_NO_BN, "label_smoothing": 0.9},
    "ring8, G without batch norm: feature matching": {**_RING8_NO_BN, "feature_matching": True},
    "ring8, G without batch norm: virtual batch norm": {**_RING8_NO_BN, "virtual_batch_norm": True},
    "ring8, G without batch norm: historical averaging": {**_RING8_NO_BN, "historical_averaging": "uniform"},
    # Presets that use the lenses ("See inside the game"): a technique's pair, opened with the
    # views it is about switched on (PRESET_VIEWS); each vanilla partner is its group's.
    "ring8, G without batch norm: why minibatch discrimination catches a collapse (see inside)": {
        **_RING8_NO_BN, "minibatch_discrimination": True},
    "ring8: what virtual batch norm removes (see inside)": {**_RING8, "virtual_batch_norm": True},
    "ring8: why historical averaging damps an orbit (see inside)": {**_RING8, "historical_averaging": "uniform"},
    "ring8, G without batch norm: label smoothing's target for D (see inside)": {**_RING8_NO_BN, "label_smoothing": 0.9},
    "digits: vanilla": {**_DIGITS},
    "digits: minibatch discrimination": {**_DIGITS, "minibatch_discrimination": True},
    "digits: feature matching": {**_DIGITS, "feature_matching": True},
}

# What opening a lens preset switches on in the page ("See inside the game"): D's heatmap and
# G's arrows over the sample picture (the layers); the lens cards it is about (shown for a
# run whenever its technique is on, which the preset's config does); and for historical
# averaging the tiny games' section, opened. Claims in these presets' notes come from
# `nice -n 10 python scripts/check_lens_presets.py` (held-out seeds 5-14).
PRESET_VIEWS: dict[str, dict[str, Any]] = {
    "ring8, G without batch norm: why minibatch discrimination catches a collapse (see inside)": {
        "layers": ("heatmap", "arrows"), "lenses": ("mbd",), "games": False},
    "ring8: what virtual batch norm removes (see inside)": {
        "layers": ("heatmap", "arrows"), "lenses": ("vbn",), "games": False},
    "ring8: why historical averaging damps an orbit (see inside)": {
        "layers": ("heatmap", "arrows"), "lenses": (), "games": True},
    "ring8, G without batch norm: label smoothing's target for D (see inside)": {
        "layers": ("heatmap", "arrows"), "lenses": ("ls",), "games": False},
}

# One sentence per preset: what it shows, with the measured evidence (seeds 0-2, mean ± std).
# Measured on 2 December 2026 on the project's 2-core machine, with minibatch discrimination's
# compiled loops (seeds 0-2/0-4 rerun there; held-out seeds 5-14 came out unchanged for runs
# without minibatch discrimination, and were rerun for those with it).
PRESET_NOTES: dict[str, str] = {
    "ring8: vanilla": (
        "The baseline for every ring8 preset: the batch norm in G keeps most of the 8 modes "
        "(seeds 0-2: 7.7 ± 0.6 modes, 12.5 ± 5.8% high-quality samples; on seeds 5-14, not used to choose it: "
        "7.0 ± 1.1 modes, from 5 to 8, and 11.3 ± 5.0%)."),
    "ring8: virtual batch norm": (
        "Sharper modes, the highest share of any ring8 preset: 49.0 ± 3.0% high-quality samples against "
        "vanilla's 12.5 ± 5.8%, higher in each of seeds 0-2 (modes 8 ± 0 against 7.7 ± 0.6); on seeds 5-14: "
        "44.9 ± 9.5% against 11.3 ± 5.0%, and all 8 modes in every seed against vanilla's 7.0 ± 1.1."),
    "ring8: feature matching": (
        "G matches D's average features rather than fooling D, so samples smear between the modes: "
        "3.9 ± 2.1% high-quality against vanilla's 12.5 ± 5.8%, lower in each of seeds 0-2 (7.3 ± 0.6 modes)."),
    "ring8: label smoothing 0.9": (
        "No reliable gain (seeds 0-2: 7.3 ± 1.2 modes, 9.2 ± 6.8% high-quality against vanilla's 7.7 ± 0.6 "
        "and 12.5 ± 5.8%, a little lower in each seed): D never grows confident on ring8 (D(real) stays about "
        "0.6-0.85 either way), so capping its target at 0.9 changes little."),
    "ring8: historical averaging": (
        "No effect beyond seed noise at the default weight 0.001 (seeds 0-2: 7.3 ± 1.2 modes, 9.8 ± 5.1% "
        "high-quality against vanilla's 7.7 ± 0.6 and 12.5 ± 5.8%); we found no setting where it helps."),
    "ring8: historical averaging 0.1 (too strong)": (
        "Too strong: the pull toward the average of all past weights keeps both players near their start, "
        "and samples spread off the modes (seeds 0-2: 1.0 ± 0.1% high-quality against vanilla's 12.5 ± 5.8%)."),
    "ring8: minibatch discrimination": (
        "About as good as vanilla, not better, because vanilla already keeps most modes here (seeds 0-2: "
        "8 ± 0 modes, 13.8 ± 7.2% high-quality against 7.7 ± 0.6 and 12.5 ± 5.8%). Compare it with the "
        "summed preset below to see why ganapp averages over the other samples."),
    "ring8: minibatch discrimination, summed (the paper's formula)": (
        "The paper's sum over the other 63 samples: D spots a collapsed batch too easily and wins outright "
        "(seeds 0-2: 2.7 ± 4.6 modes, 3.9 ± 6.8% high-quality; with seeds 1 and 2 no sample lands on a mode, "
        "and seed 0 reaches all 8 but very unevenly, mode KL 1.07). The mean form (the preset above) keeps all 8."),
    "ring8: the paper's methods (MBD + LS + VBN)": (
        "The paper's 'our methods' set (Table 3): all 8 modes in every seed with 37.8 ± 5.0% high-quality "
        "samples, more than vanilla in each of seeds 0-2 (7.7 ± 0.6 modes, 12.5 ± 5.8%); but virtual batch norm "
        "alone puts more on a mode (49.0 ± 3.0%); its modes are somewhat more even than vanilla's, within the "
        "spread of seeds (mode KL 0.21 ± 0.08 against 0.36 ± 0.25)."),
    "ring8, G without batch norm: vanilla": (
        "The classic mode collapse: without batch norm in G (and at learning rate 3e-4) the generator piles its "
        "samples onto one place (seeds 0-4: 1.0 ± 1.2 modes covered, at most 3 in any seed; seeds 5-14: "
        "0.3 ± 0.5, at most 1)."),
    "ring8, G without batch norm: minibatch discrimination": (
        "Minibatch discrimination's classic effect: D sees the collapsed batch, and G spreads over the ring "
        "(seeds 0-4: 7.8 ± 0.4 modes against vanilla's 1.0 ± 1.2, more in every seed; seeds 5-14: 7.9 ± 0.3, "
        "from 7 to 8, against 0.3 ± 0.5; the samples are still loose, 3.2 ± 2.7% high-quality)."),
    "ring8, G without batch norm: label smoothing 0.9": (
        "Label smoothing's effect: capping D's real target at 0.9 keeps D from growing over-confident, and G "
        "keeps most of the modes: 7.8 ± 0.4 on seeds 0-4, all 8 in four of them (vanilla: 1.0 ± 1.2), but "
        "7.1 ± 1.4, from 4 to 8, on seeds 5-14 (vanilla: 0.3 ± 0.5); samples stay loose (2.6 ± 1.8% high-quality)."),
    "ring8, G without batch norm: feature matching": (
        "G matches D's average features instead of fooling D, which spreads it over the ring (seeds 0-4: "
        "7.4 ± 0.5 modes against vanilla's 1.0 ± 1.2), but few samples sit on a mode (1.0 ± 0.2% high-quality)."),
    "ring8, G without batch norm: virtual batch norm": (
        "Normalising each sample against a fixed reference batch is enough to stop the collapse and gives the "
        "sharpest samples of this group (seeds 0-4: 8 ± 0 modes, 17.3 ± 3.2% high-quality, vanilla 1.0 ± 1.2 "
        "and 1.0 ± 1.5%; seeds 5-14: 8 ± 0 modes again, 17.2 ± 3.5%)."),
    "ring8, G without batch norm: historical averaging": (
        "No rescue: at the default weight 0.001 G still collapses (seeds 0-4: 1.2 ± 0.4 modes against "
        "vanilla's 1.0 ± 1.2, within seed noise)."),
    "ring8, G without batch norm: why minibatch discrimination catches a collapse (see inside)": (
        "Watch the closeness matrices under the right picture and replay from step 0: G starts bunched, so "
        "its batch is dark red (mean closeness 0.97 against the real batch's 0.62 in each of seeds 5-14); D "
        "uses that, G spreads, and at steps 200-400 its matrix is paler than the real one in every seed, while "
        "vanilla on the left stays collapsed (at step 2000: 7 or 8 modes in every seed, vanilla 0 or 1)."),
    "ring8: what virtual batch norm removes (see inside)": (
        "Watch the VBN lens: the same 8 noise vectors among two sets of batch-mates, through this G with "
        "batch norm (they move, by 0.16 to 1.6 at each picture of the first 400 steps, seeds 5-14) and with "
        "VBN (they move by 0 at every picture); the left run's G uses batch norm, so its samples depend on "
        "their batch-mates."),
    "ring8: why historical averaging damps an orbit (see inside)": (
        "Open 'Historical averaging in a tiny game' (this preset opens it): in V = x·y at learning rate 0.05, "
        "plain gradient descent spirals out from distance 1.41 to 9.2 in 1,500 steps, and with historical "
        "averaging (weight 0.1) the players end 0.0059 from the equilibrium; the ring8 pair beside it uses "
        "the default weight 0.001."),
    "ring8, G without batch norm: label smoothing's target for D (see inside)": (
        "Watch the histogram of D(x) on 256 real points and the red line at α = 0.9, D's target for real data "
        "instead of 1: here D's outputs on real points stay well below it (mean at most 0.67 at any picture, "
        "0.57 ± 0.01 at step 2000, seeds 5-14), yet G keeps 7.1 ± 1.4 modes (4-8) against vanilla's 0.3 ± "
        "0.5."),
    "digits: vanilla": (
        "The baseline for the digits presets (seeds 0-2: classifier score 6.52 ± 0.17, Frechet distance "
        "172 ± 35, all 10 classes; held-out seeds 5-14: 6.39 ± 0.30 and 176 ± 48; real held-out digits "
        "score 9.39 and 23.3)."),
    "digits: minibatch discrimination": (
        "Clearly better samples in every seed (seeds 0-2: classifier score 7.53 ± 0.28 against vanilla's "
        "6.52 ± 0.17, Frechet distance 49 ± 6 against 172 ± 35; held-out seeds 5-14, better in each of "
        "them: 7.50 ± 0.20 against 6.39 ± 0.30, and 59 ± 18 against 176 ± 48; real held-out digits: 9.39 "
        "and 23.3)."),
    "digits: feature matching": (
        "A small effect, not a cure: on held-out seeds 5-14 the classifier score is within vanilla's spread "
        "(6.51 ± 0.34 against 6.39 ± 0.30, higher in 7 of 10 seeds) and the Frechet distance lower "
        "(119 ± 38 against 176 ± 48, lower in 8 of 10). Seeds 0-2 agree: distance lower in all 3 (107 ± 19 "
        "against 172 ± 35), score a little higher (6.61 ± 0.27 against 6.52 ± 0.17)."),
}


def preset_config(name: str) -> GANConfig:
    """The full, validated config of preset `name`; KeyError names the known presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return GANConfig.from_dict(dict(PRESETS[name]))


# ---------------------------------------------------------------------------------------
# Ready-made runs: finished runs shipped in checkpoints/runs/ (made by the commands in its
# README), which the app opens in about a second, for a class that cannot wait.
READY_MADE_DIR = Path(__file__).resolve().parents[1] / "checkpoints" / "runs"

READY_MADE_NOTES: dict[str, str] = {
    "ring8-no-batch-norm-vanilla": "ring8, G without batch norm, learning rates 3e-4, 2000 steps, seed 0: the classic "
                                   "mode collapse, every sample on one streak through one mode.",
    "ring8-no-batch-norm-minibatch-discrimination": "The same with minibatch discrimination: D sees the collapse, and "
                                                    "G spreads over the ring and covers all 8 modes.",
    "ring8-vanilla": "ring8, no technique, 2000 steps, seed 0: all 8 modes, 19.1% of samples high-quality.",
    "ring8-virtual-batch-norm": "ring8 with virtual batch norm, 2000 steps, seed 0: all 8 modes, and more than "
                                "twice vanilla's share of samples on a mode (48.8% high-quality).",
    "ring8-minibatch-discrimination": "ring8 with minibatch discrimination (mean over the other samples), 2000 "
                                      "steps, seed 0: all 8 modes, 20.2% high-quality, like vanilla.",
    "ring8-minibatch-discrimination-summed": "ring8 with the paper's summed minibatch features, 2000 steps, seed 0: "
                                             "D wins outright (its score on fakes falls to 0.025); G reaches all 8 "
                                             "modes, 11.8% high-quality, but very unevenly (mode KL 1.07).",
    "ring8-our-methods": "ring8 with the paper's methods (MBD + label smoothing + VBN), 2000 steps, seed 0: all 8 "
                         "modes, 32.1% high-quality, against vanilla's 19.1%.",
    "digits-vanilla": "digits, no technique, 1000 steps, seed 1: classifier score 7.00, Frechet distance 83.4 "
                      "(real held-out digits: 9.39 and 23.3).",
    "digits-minibatch-discrimination": "digits with minibatch discrimination, 1000 steps, seed 1: a higher classifier "
                                       "score than vanilla (7.89 against 7.00) and half its Frechet distance (39.9 "
                                       "against 83.4).",
}


def ready_made_runs() -> list[str]:
    """The names of the shipped runs whose checkpoint is present, in READY_MADE_NOTES' order."""
    return [name for name in READY_MADE_NOTES if (READY_MADE_DIR / name / "checkpoint.safetensors").is_file()]


def ready_made_checkpoint(name: str) -> Path:
    """The checkpoint of ready-made run `name`; KeyError for any other name (never a path)."""
    if name not in ready_made_runs():
        raise KeyError(f"unknown ready-made run {name!r}; known: {', '.join(ready_made_runs())}")
    return READY_MADE_DIR / name / "checkpoint.safetensors"


# ---------------------------------------------------------------------------------------
# The same in Traditional Chinese (Taiwan), for the page's 繁體中文 view (terms as in
# shared/CLASSROOM.md). The English keys stay the presets' names everywhere (links, API).
PRESET_TITLES_ZH: dict[str, str] = {
    "ring8: vanilla": "ring8：原始 GAN",
    "ring8: virtual batch norm": "ring8：虛擬的批次歸一化",
    "ring8: feature matching": "ring8：特徵匹配",
    "ring8: label smoothing 0.9": "ring8：單邊的標籤平滑 0.9",
    "ring8: historical averaging": "ring8：歷史平均法",
    "ring8: historical averaging 0.1 (too strong)": "ring8：歷史平均法 0.1（太強）",
    "ring8: minibatch discrimination": "ring8：小批次判別",
    "ring8: minibatch discrimination, summed (the paper's formula)": "ring8：小批次判別，總和（論文的公式）",
    "ring8: the paper's methods (MBD + LS + VBN)": "ring8：論文的方法（小批次判別 + 標籤平滑 + 虛擬的批次歸一化）",
    "ring8, G without batch norm: vanilla": "ring8，生成器沒有批次歸一化：原始 GAN",
    "ring8, G without batch norm: minibatch discrimination": "ring8，生成器沒有批次歸一化：小批次判別",
    "ring8, G without batch norm: label smoothing 0.9": "ring8，生成器沒有批次歸一化：單邊的標籤平滑 0.9",
    "ring8, G without batch norm: feature matching": "ring8，生成器沒有批次歸一化：特徵匹配",
    "ring8, G without batch norm: virtual batch norm": "ring8，生成器沒有批次歸一化：虛擬的批次歸一化",
    "ring8, G without batch norm: historical averaging": "ring8，生成器沒有批次歸一化：歷史平均法",
    "ring8, G without batch norm: why minibatch discrimination catches a collapse (see inside)":
        "ring8，生成器沒有批次歸一化：為什麼小批次判別抓得到崩潰（看進內部）",
    "ring8: what virtual batch norm removes (see inside)":
        "ring8：虛擬的批次歸一化去掉了什麼（看進內部）",
    "ring8: why historical averaging damps an orbit (see inside)":
        "ring8：為什麼歷史平均法讓繞圈停下來（看進內部）",
    "ring8, G without batch norm: label smoothing's target for D (see inside)":
        "ring8，生成器沒有批次歸一化：單邊的標籤平滑給判別器的目標（看進內部）",
    "digits: vanilla": "digits：原始 GAN",
    "digits: minibatch discrimination": "digits：小批次判別",
    "digits: feature matching": "digits：特徵匹配",
}

PRESET_NOTES_ZH: dict[str, str] = {
    "ring8: vanilla": (
        "所有 ring8 預設實驗的基準：生成器裡的批次歸一化保住大部分的 8 個模式"
        "（隨機種子 0-2：7.7 ± 0.6 個模式，高品質樣本比例 12.5 ± 5.8%；在沒有用來挑選的隨機種子 5-14："
        "7.0 ± 1.1 個模式，從 5 到 8，高品質 11.3 ± 5.0%）。"),
    "ring8: virtual batch norm": (
        "模式更集中，是 ring8 預設實驗中最高的比例：高品質樣本比例 49.0 ± 3.0%，原始 GAN 為 12.5 ± 5.8%，"
        "隨機種子 0-2 每一個都比較高（模式數 8 ± 0，原始 GAN 為 7.7 ± 0.6）；隨機種子 5-14：44.9 ± 9.5%，"
        "原始 GAN 為 11.3 ± 5.0%，每個種子都保住 8 個模式（原始 GAN 為 7.0 ± 1.1）。"),
    "ring8: feature matching": (
        "生成器去對齊判別器的平均特徵，而不是騙過判別器，所以樣本散在模式之間：高品質樣本比例 3.9 ± 2.1%，"
        "原始 GAN 為 12.5 ± 5.8%，隨機種子 0-2 每一個都比較低（7.3 ± 0.6 個模式）。"),
    "ring8: label smoothing 0.9": (
        "沒有穩定的好處（隨機種子 0-2：7.3 ± 1.2 個模式，高品質樣本比例 9.2 ± 6.8%，原始 GAN 為 7.7 ± 0.6 與 "
        "12.5 ± 5.8%，每個種子都稍低）：在 ring8 上判別器本來就不會太自信（真實資料的 D(x) 約 0.6-0.85），"
        "把目標限制在 0.9 改變不大。"),
    "ring8: historical averaging": (
        "在預設權重 0.001 下，沒有超出隨機種子差異的效果（隨機種子 0-2：7.3 ± 1.2 個模式，高品質樣本比例 "
        "9.8 ± 5.1%，原始 GAN 為 7.7 ± 0.6 與 12.5 ± 5.8%）；我們沒有找到它有幫助的設定。"),
    "ring8: historical averaging 0.1 (too strong)": (
        "太強了：拉回所有過去權重平均的力量讓兩個玩家都停在起點附近，樣本散在模式之外"
        "（隨機種子 0-2：高品質樣本比例 1.0 ± 0.1%，原始 GAN 為 12.5 ± 5.8%）。"),
    "ring8: minibatch discrimination": (
        "和原始 GAN 差不多好，沒有更好，因為原始 GAN 在這裡已經保住大部分的模式（隨機種子 0-2：8 ± 0 個模式，"
        "高品質樣本比例 13.8 ± 7.2%，原始 GAN 為 7.7 ± 0.6 與 12.5 ± 5.8%）。和下面的「總和」預設實驗比較，"
        "就知道 ganapp 為什麼對其他樣本取平均。"),
    "ring8: minibatch discrimination, summed (the paper's formula)": (
        "論文的公式，對其他 63 個樣本求總和：判別器太容易發現崩潰的批次，完全獲勝"
        "（隨機種子 0-2：2.7 ± 4.6 個模式，高品質樣本比例 3.9 ± 6.8%；隨機種子 1 與 2 沒有樣本落在模式上，"
        "隨機種子 0 雖然到達全部 8 個模式，但非常不平均，模式分布的 KL 散度 1.07）。"
        "平均的形式（上面的預設實驗）保住全部 8 個。"),
    "ring8: the paper's methods (MBD + LS + VBN)": (
        "論文表 3 的「我們的方法」組合：每個隨機種子都有全部 8 個模式，高品質樣本比例 37.8 ± 5.0%，"
        "隨機種子 0-2 每一個都比原始 GAN 高（原始 GAN 7.7 ± 0.6 個模式，12.5 ± 5.8%）；但只用虛擬的批次歸一化"
        "時落在模式上的樣本更多（49.0 ± 3.0%）；它的模式比原始 GAN 稍微平均一些，但在隨機種子的差異之內"
        "（模式分布的 KL 散度 0.21 ± 0.08，原始 GAN 0.36 ± 0.25）。"),
    "ring8, G without batch norm: vanilla": (
        "經典的模式崩潰（mode collapse）：生成器沒有批次歸一化（學習率 3e-4）時，樣本全部擠到同一個地方"
        "（隨機種子 0-4：涵蓋的模式數 1.0 ± 1.2，任何種子最多 3 個；隨機種子 5-14：0.3 ± 0.5，最多 1 個）。"),
    "ring8, G without batch norm: minibatch discrimination": (
        "小批次判別的經典效果：判別器看得到崩潰的批次，生成器於是散布到整個圓環"
        "（隨機種子 0-4：7.8 ± 0.4 個模式，原始 GAN 為 1.0 ± 1.2，每個種子都比較多；隨機種子 5-14：7.9 ± 0.3，"
        "從 7 到 8，原始 GAN 為 0.3 ± 0.5；樣本仍然鬆散，高品質樣本比例 3.2 ± 2.7%）。"),
    "ring8, G without batch norm: label smoothing 0.9": (
        "標籤平滑的效果：把判別器對真實資料的目標限制在 0.9，判別器不會過度自信，生成器保住大部分的模式："
        "隨機種子 0-4 是 7.8 ± 0.4 個，其中 4 個種子是全部 8 個（原始 GAN 為 1.0 ± 1.2），但隨機種子 5-14 是 "
        "7.1 ± 1.4 個，從 4 到 8（原始 GAN 為 0.3 ± 0.5）；樣本仍然鬆散（高品質樣本比例 2.6 ± 1.8%）。"),
    "ring8, G without batch norm: feature matching": (
        "生成器去對齊判別器的平均特徵，而不是騙過判別器，因此散布到整個圓環（隨機種子 0-4：7.4 ± 0.5 個模式，"
        "原始 GAN 為 1.0 ± 1.2），但很少樣本落在模式上（高品質樣本比例 1.0 ± 0.2%）。"),
    "ring8, G without batch norm: virtual batch norm": (
        "用固定的參考批次來歸一化每個樣本，就足以阻止崩潰，而且是這一組裡最集中的樣本"
        "（隨機種子 0-4：8 ± 0 個模式，高品質樣本比例 17.3 ± 3.2%；原始 GAN 為 1.0 ± 1.2 與 1.0 ± 1.5%；"
        "隨機種子 5-14：同樣 8 ± 0 個模式，17.2 ± 3.5%）。"),
    "ring8, G without batch norm: historical averaging": (
        "救不回來：在預設權重 0.001 下生成器仍然崩潰（隨機種子 0-4：1.2 ± 0.4 個模式，原始 GAN 為 1.0 ± 1.2，"
        "在隨機種子的差異之內）。"),
    "ring8, G without batch norm: why minibatch discrimination catches a collapse (see inside)": (
        "看右邊圖下的接近度矩陣，並用滑桿從第 0 步重播：生成器一開始擠在一起，所以它的批次是深紅色（隨機種子 5-14 每一個："
        "平均接近度 0.97，真實批次為 0.62）；判別器利用這一點，生成器散開，第 200 到 400 步每個種子的生成矩陣都比真實的淡，"
        "而左邊的原始 GAN 崩潰（第 2000 步：每個種子涵蓋 7 或 8 個模式，原始 GAN 只有 0 或 1 個）。"),
    "ring8: what virtual batch norm removes (see inside)": (
        "看虛擬的批次歸一化的透鏡：同樣 8 個雜訊向量放進兩組不同的批次夥伴，經過這個生成器的批次歸一化版本（輸出會移動，"
        "隨機種子 5-14 前 400 步的每張圖移動 0.16 到 1.6）與虛擬的批次歸一化版本（每張圖都移動 0）"
        "；左邊訓練的生成器用批次歸一化，所以它的樣本會受批次夥伴影響。"),
    "ring8: why historical averaging damps an orbit (see inside)": (
        "打開「歷史平均法（historical averaging）：一個很小的賽局」（這個預設實驗會幫你打開）"
        "：在 V = x·y、學習率 0.05 下，一般的梯度下降在 1,500 步內從距離 1.41 螺旋向外到 9.2；"
        "加上歷史平均法（權重 0.1）後，兩個玩家最後離均衡點 0.0059；旁邊 ring8 的這對訓練用預設權重 0.001。"),
    "ring8, G without batch norm: label smoothing's target for D (see inside)": (
        "看 256 個真實點上 D(x) 的直方圖和 α = 0.9 的紅線（判別器對真實資料的目標是 0.9 而不是 1）"
        "：在這裡判別器對真實點的輸出一直遠低於紅線（隨機種子 5-14：任何一張圖的平均最多 0.67，第 2000 步為 0.57 ± 0.01）"
        "，但生成器保住 7.1 ± 1.4 個模式（4 到 8），原始 GAN 為 0.3 ± 0.5。"),
    "digits: vanilla": (
        "digits 預設實驗的基準（隨機種子 0-2：分類器分數 6.52 ± 0.17，Fréchet 距離 172 ± 35，10 個類別都有；"
        "保留的隨機種子 5-14：6.39 ± 0.30 與 176 ± 48；真實的保留數字為 9.39 與 23.3）。"),
    "digits: minibatch discrimination": (
        "每個隨機種子的樣本都明顯更好（隨機種子 0-2：分類器分數 7.53 ± 0.28，原始 GAN 為 6.52 ± 0.17；"
        "Fréchet 距離 49 ± 6，原始 GAN 為 172 ± 35；保留的隨機種子 5-14 每個都更好：7.50 ± 0.20 對 "
        "6.39 ± 0.30，59 ± 18 對 176 ± 48；真實的保留數字：9.39 與 23.3）。"),
    "digits: feature matching": (
        "效果很小，不是治療：在保留的隨機種子 5-14 上，分類器分數在原始 GAN 的差異範圍之內（6.51 ± 0.34 對 "
        "6.39 ± 0.30，10 個種子中 7 個比較高），Fréchet 距離較低（119 ± 38 對 176 ± 48，10 個中 8 個比較低）。"
        "用來選定 1000 步的隨機種子 0-2 也一樣：Fréchet 距離 3 個種子都比較低（107 ± 19 對 172 ± 35），"
        "分類器分數稍高一點（6.61 ± 0.27 對 6.52 ± 0.17）。"),
}

READY_MADE_TITLES_ZH: dict[str, str] = {
    "ring8-no-batch-norm-vanilla": "ring8，生成器沒有批次歸一化：原始 GAN（模式崩潰）",
    "ring8-no-batch-norm-minibatch-discrimination": "ring8，生成器沒有批次歸一化：小批次判別（治好崩潰）",
    "ring8-vanilla": "ring8：原始 GAN",
    "ring8-virtual-batch-norm": "ring8：虛擬的批次歸一化",
    "ring8-minibatch-discrimination": "ring8：小批次判別",
    "ring8-minibatch-discrimination-summed": "ring8：小批次判別，總和（論文的公式）",
    "ring8-our-methods": "ring8：論文的方法",
    "digits-vanilla": "digits：原始 GAN",
    "digits-minibatch-discrimination": "digits：小批次判別",
}

READY_MADE_NOTES_ZH: dict[str, str] = {
    "ring8-no-batch-norm-vanilla": "ring8，生成器沒有批次歸一化，學習率 3e-4，2000 步，隨機種子 0：經典的模式崩潰，"
                                   "所有樣本都在穿過一個模式的一條線上。",
    "ring8-no-batch-norm-minibatch-discrimination": "同樣的設定加上小批次判別：判別器看得到崩潰，生成器散布到整個"
                                                    "圓環，涵蓋全部 8 個模式。",
    "ring8-vanilla": "ring8，沒有技巧，2000 步，隨機種子 0：全部 8 個模式，高品質樣本比例 19.1%。",
    "ring8-virtual-batch-norm": "ring8 加上虛擬的批次歸一化，2000 步，隨機種子 0：全部 8 個模式，落在模式上的樣本"
                                "比例是原始 GAN 的兩倍以上（高品質樣本比例 48.8%）。",
    "ring8-minibatch-discrimination": "ring8 加上小批次判別（對其他樣本取平均），2000 步，隨機種子 0：全部 8 個模式，"
                                      "高品質樣本比例 20.2%，和原始 GAN 差不多。",
    "ring8-minibatch-discrimination-summed": "ring8 加上論文的總和形式小批次判別，2000 步，隨機種子 0：判別器完全獲勝"
                                             "（它對假樣本的分數降到 0.025）；生成器到達全部 8 個模式，高品質樣本比例 "
                                             "11.8%，但非常不平均（模式分布的 KL 散度 1.07）。",
    "ring8-our-methods": "ring8 加上論文的方法（小批次判別 + 標籤平滑 + 虛擬的批次歸一化），2000 步，隨機種子 0："
                         "全部 8 個模式，高品質樣本比例 32.1%，原始 GAN 為 19.1%。",
    "digits-vanilla": "digits，沒有技巧，1000 步，隨機種子 1：分類器分數 7.00，Fréchet 距離 83.4"
                      "（真實的保留數字：9.39 與 23.3）。",
    "digits-minibatch-discrimination": "digits 加上小批次判別，1000 步，隨機種子 1：分類器分數比原始 GAN 高"
                                       "（7.89，原始 GAN 為 7.00），Fréchet 距離只有一半（39.9，原始 GAN 為 83.4）。",
}
