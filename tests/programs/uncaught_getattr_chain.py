# exit: 1
"""Dies in a call on an attribute chain with subscripts and calls mixed in, where carets
point into the middle of the line."""


class Node:
    def __init__(self, children):
        self.children = children

    def get(self, i):
        return self.children[i]

    def value(self, scale=1):
        return len(self.children) * scale


tree = Node([Node([Node([])]), Node([])])
print(tree.get(0).get(0).value())
print(tree.children[0].get(0).value(scale=3))
print(tree.get(1).value() + tree.get(0).get(0).value(2))
total = tree.get(0).value() + tree.get(0).get(0).get(5).value()
