"""horde.rpc"""
