#!/usr/bin/env python3
"""relinearized_training.py -- examples/relinearized_training.c in Python:
iteratively re-linearized training (Goldwaser & Ge 2022).  The linearized
network (trainer order 1) is trained, and every K steps its base theta0
moves to the current theta (reexpand_every = K), so the model follows the
network's features as they change.  K = 1 is full training step for step;
K beyond the run's length is plain linearized training.

    python3 bindings/python/examples/relinearized_training.py [--reexpand K] ... (--help)
"""

import sys
import time

import taylornet as tn

import fashion_mnist
import training


def main(argv=None):
    parser = training.flags("Trains the linearized MLP on Fashion-MNIST, re-linearizing "
                            "every K steps.", train=20000, epochs=5)
    parser.add_argument("--reexpand", type=int, default=100, metavar="K",
                        help="re-linearize at the current theta every K steps")
    args = parser.parse_args(argv)
    if args.reexpand <= 0:
        parser.error("--reexpand must be > 0 (linearized_training never re-expands)")
    data = fashion_mnist.load(args)

    with tn.Context(threads=args.threads) as ctx:
        net = tn.Network(ctx, data.train.d)
        for _ in range(args.depth):
            net.add_dense(args.width).add_activation("relu")
        net.add_dense(data.train.classes).set("parameterization", args.param).init(args.seed)

        trainer = tn.Trainer(net, loss=training.LOSSES[args.loss], optimizer=args.optimizer)
        # The linearized model around the initialization; after every K-th
        # step the trainer moves theta0 to the current theta: f_1 starts
        # again from the network as it is now.
        trainer.set("order", 1).set("reexpand_every", args.reexpand)
        training.print_setup(args, net, "linearized network (order 1), re-linearized every "
                                        f"{args.reexpand} steps")

        batches = fashion_mnist.Minibatches(data.train, args.batch, args.seed)
        start = time.monotonic()
        for epoch in range(args.epochs):
            lr = training.learning_rate(args, epoch)
            trainer.set("learning_rate", lr)
            loss_sum = sum(trainer.step(x, y) * len(x) for x, y in batches.epoch())
            accuracy = fashion_mnist.accuracy(trainer.predict, data.test)
            training.print_epoch(epoch, lr, loss_sum / data.train.n, accuracy,
                                 time.monotonic() - start)
        training.print_final(accuracy, args.epochs, time.monotonic() - start)
        steps = trainer.num_steps
        print(f"re-linearized {steps // args.reexpand} times in {steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
