import type { ChannelModel, ConfirmChannel, ConsumeMessage, GetMessage, Message } from 'amqplib'
import { describe, it } from 'vitest'
import type {
  AmqpConfirmChannel,
  AmqpConnection,
  AmqpConnectionSource,
  AmqpMessage,
} from './rabbitmq-client.js'

/** Compiles only when `value` is assignable to T. */
const accepts = <T>(value: T): T => value

describe('the structural amqplib types', () => {
  it('accept what amqplib hands out', () => {
    const model = {} as ChannelModel
    accepts<AmqpConnection>(model)
    accepts<AmqpConnectionSource>(model)
    accepts<AmqpConnectionSource>(async () => model)
    accepts<AmqpConfirmChannel>({} as ConfirmChannel)
    accepts<AmqpMessage>({} as ConsumeMessage)
    accepts<AmqpMessage>({} as GetMessage)
    accepts<AmqpMessage>({} as Message)
  })
})
