#!/usr/bin/env python3
"""full_training.py -- examples/full_training.c in Python: an MLP trained as
itself (trainer order 0) on Fashion-MNIST with softmax cross-entropy and
Adam.  Prints per epoch the learning rate, the mean training loss, the test
accuracy and the elapsed time, in the C program's format.

    python3 bindings/python/examples/full_training.py [--epochs N] ... (--help)

The whole recipe is here; fashion_mnist.py holds the data, training.py the
flags and the printing.
"""

import sys
import time

import taylornet as tn

import fashion_mnist
import training


def main(argv=None):
    args = training.flags("Trains an MLP (the full network, trainer order 0) on "
                          "Fashion-MNIST.").parse_args(argv)
    data = fashion_mnist.load(args)

    # A context: the BLAS threads of every call made in it.  Leaving the
    # `with` block frees it and everything made from it.
    with tn.Context(threads=args.threads) as ctx:
        # 784 inputs, `depth` hidden layers of `width` ReLU units, one output
        # per class; the parameters drawn from the seed.
        net = tn.Network(ctx, data.train.d)
        for _ in range(args.depth):
            net.add_dense(args.width).add_activation("relu")
        net.add_dense(data.train.classes).set("parameterization", args.param).init(args.seed)

        # The trainer: loss and optimizer.  Its order is 0 unless set: the
        # network itself is trained.
        trainer = tn.Trainer(net, loss=training.LOSSES[args.loss], optimizer=args.optimizer)
        training.print_setup(args, net)

        batches = fashion_mnist.Minibatches(data.train, args.batch, args.seed)
        start = time.monotonic()
        for epoch in range(args.epochs):
            lr = training.learning_rate(args, epoch)
            trainer.set("learning_rate", lr)
            # Each step returns the loss on its batch before its update.
            loss_sum = sum(trainer.step(x, y) * len(x) for x, y in batches.epoch())
            accuracy = fashion_mnist.accuracy(trainer.predict, data.test)
            training.print_epoch(epoch, lr, loss_sum / data.train.n, accuracy,
                                 time.monotonic() - start)
        training.print_final(accuracy, args.epochs, time.monotonic() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
