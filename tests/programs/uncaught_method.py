# exit: 1
"""Dies with an uncaught exception raised through method calls."""


class Account:
    def __init__(self, balance):
        self.balance = balance

    def withdraw(self, amount):
        if amount > self.balance:
            raise ValueError(f"insufficient funds: {self.balance} < {amount}")
        self.balance -= amount
        return self.balance

    def transfer(self, other, amount):
        other.deposit(self.withdraw(amount))

    def deposit(self, amount):
        self.balance += amount


a = Account(100)
b = Account(0)
print(a.withdraw(30))
a.transfer(b, 50)
print(a.balance, b.balance)
a.transfer(b, a.balance + 1)
print("not reached")
