"""Worked solution of exercise 4.3: one step of the lesson's gradient descent on every parameter."""


def gradient_descent(params, grads, lr):
    # w <- w - lr dL/dw: the gradient points to where the loss grows fastest, so a small step against it lowers
    # the loss. `w - lr * g` makes a new array; `w -= lr * g` would change the caller's params in place.
    # Every gradient is taken before any parameter moves (the lesson's step 4 before its step 5).
    return {name: w - lr * grads[name] for name, w in params.items()}
