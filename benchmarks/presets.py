"""Named settings of the fairness benchmark (``--preset NAME``).

Each preset is plain data: the fields of
:class:`benchmarks._config.BenchmarkConfig` plus, optionally, ``n_jobs`` (how
many cells run at once by default) and ``fallback`` (fields that replace the
dataset's when its files are missing, so that a demo still runs). Options
given on the command line override a preset's values.
"""

from ._registry import ALL_PROTOCOLS

#: The strategies of the paper's figures.
PAPER_STRATEGIES = ["random", "grand", "el2n", "forgetting", "dynunc"]
#: The strategies skprune adds to them.
NEW_STRATEGIES = ["coreset", "prototype", "uncertainty", "aum"]
#: What the paper presets set to follow the DRoP authors' configuration (see
#: the user guide's "Fidelity to DRoP"): ``query_protocol="drop"`` sets up the
#: query networks, the strategies' conventions and MetriQ as their code does
#: (benchmarks._cells.PrunerFactory), ``test_split="ordered"`` halves the test
#: set as their data/vision/vision_data.py does, and ``epochs_rounding="floor"``
#: truncates the corrected epochs and learning-rate drops as their
#: epochs_correction (utils.py) does. tests/test_drop_fidelity.py checks every
#: setting against their code.
DROP_FIDELITY = {"query_protocol": "drop", "test_split": "ordered", "epochs_rounding": "floor"}

#: What the demo and the demo of skprune's own strategies share: Fashion-MNIST
#: at a CPU's size, the demo's MLP, the paper's four protocols.
_DEMO_SETTINGS = {
    "dataset": "fashion-mnist",
    "n_train": 10000,
    "model": "mlp",
    "recipe": "fashion-mnist-mlp",
    "net_params": {"max_epochs": 6},
    "protocols": ["Random", "Strategy", "Strategy+MetriQ", "Random+MetriQ"],
    "densities": [0.2, 0.4, 0.7],
    "seeds": [0, 1],
    "epochs_correction": True,
    "full_reference": True,
    "n_jobs": -1,
}
#: The grid of the paper's figures: every protocol, five densities, three
#: seeds, the epoch correction and the full-data reference.
_PAPER_GRID = {
    "protocols": ALL_PROTOCOLS,
    "densities": [0.1, 0.3, 0.5, 0.7, 0.9],
    "seeds": [0, 1, 2],
    "epochs_correction": True,
    "full_reference": True,
}
#: What the two paper presets share: the paper's grid and the DRoP authors'
#: conventions (:data:`DROP_FIDELITY`).
_PAPER_SETTINGS = {
    "net_params": {},
    "strategies": PAPER_STRATEGIES,
    "strategy_params": {},
    **_PAPER_GRID,
    "n_jobs": 1,
    **DROP_FIDELITY,
}


PRESETS = {
    # The tests run this one: every protocol, on data and a network small
    # enough that the whole grid takes seconds.
    "smoke": {
        "description": "seconds-long run of every protocol on scikit-learn's 8x8 digits",
        "dataset": "digits",
        "model": "mlp",
        "recipe": "digits-mlp",
        "net_params": {"max_epochs": 6, "module__hidden": [32]},
        "strategies": ["random", "el2n"],
        "strategy_params": {"el2n": {"n_runs": 1}},
        "protocols": ALL_PROTOCOLS,
        "densities": [0.3, 0.6],
        "seeds": [0],
        "epochs_correction": True,
        "full_reference": True,
        "n_jobs": 1,
    },
    # What `make demo` runs: real data with a clearly hardest class (shirt),
    # sized to finish in about 4 minutes on 2 busy CPU cores (10 at most).
    # EL2N and Forgetting keep the hardest samples, which at low densities
    # starves the easy classes: the paper's bias shows within minutes.
    "demo": {
        "description": "Fashion-MNIST, a CPU-sized MLP, EL2N and Forgetting, 2 seeds",
        **_DEMO_SETTINGS,
        "strategies": ["el2n", "forgetting"],
        "strategy_params": {"el2n": {"n_runs": 3}, "forgetting": {"n_runs": 1}},
        "fallback": {
            "dataset": "digits",
            "n_train": None,
            "recipe": "digits-mlp",
            "net_params": {"max_epochs": 20},
        },
    },
    # The strategies skprune adds to the paper's, at the demo's size.
    "demo-strategies": {
        "description": "Fashion-MNIST, the demo's MLP, CoreSet/Prototype/Uncertainty/AUM",
        **_DEMO_SETTINGS,
        "strategies": NEW_STRATEGIES,
        "strategy_params": {},
    },
    # Group robustness: a shortcut attribute (a border) aligned with the
    # class in 95% of the training images, independent in the test set;
    # groups are class x attribute. MetriQ over classes against MetriQ over
    # groups and against SUBG (Idrissi et al.'s group-balanced subsampling),
    # with the full data, plain and group-balanced, as references; at the
    # demo's size.
    "groups-demo": {
        "description": "spurious Fashion-MNIST, group MetriQ vs SUBG, worst-group accuracy",
        "dataset": "spurious-fashion-mnist",
        "n_train": 10000,
        "model": "mlp",
        "recipe": "fashion-mnist-mlp",
        "net_params": {"max_epochs": 6},
        "strategies": ["el2n"],
        "strategy_params": {"el2n": {"n_runs": 2}},
        "protocols": ["Random", "Strategy", "Strategy+MetriQ", "Random+MetriQ",
                      "Strategy+GroupMetriQ", "Random+GroupMetriQ", "SUBG"],
        "densities": [0.2, 0.4],
        "seeds": [0, 1],
        "epochs_correction": True,
        "full_reference": True,
        "n_jobs": -1,
    },
    "fashion-mnist-full": {
        "description": "Fashion-MNIST, every strategy and protocol, 5 densities, 3 seeds",
        "dataset": "fashion-mnist",
        "model": "cnn",
        "recipe": "fashion-mnist-cnn",
        "net_params": {},
        "strategies": PAPER_STRATEGIES + NEW_STRATEGIES,
        "strategy_params": {},
        **_PAPER_GRID,
        "n_jobs": -1,
    },
    # The paper's Figures 1-2 (GPU-sized; data from --data-root). Training
    # settings (SGD, schedule, epochs) live in skprune.models.RECIPES.
    "paper-cifar100-vgg19": {
        "description": "VGG-19 on CIFAR-100 with the paper's settings (GPU)",
        "dataset": "cifar100",
        "model": "vgg19",
        "recipe": "paper-cifar100-vgg19",
        **_PAPER_SETTINGS,
    },
    "paper-tinyimagenet-resnet18": {
        "description": "ResNet-18 on TinyImageNet with the paper's settings (GPU)",
        "dataset": "tiny-imagenet",
        "model": "resnet18",
        "recipe": "paper-tinyimagenet-resnet18",
        **_PAPER_SETTINGS,
    },
}
