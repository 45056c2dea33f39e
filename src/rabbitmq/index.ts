// switchyard-bus/rabbitmq: Publisher and Subscriber over RabbitMQ, through your own amqplib connection.
export type {
  AmqpConfirmChannel,
  AmqpConnection,
  AmqpConnectionSource,
  AmqpMessage,
} from './rabbitmq-client.js'
export type { RabbitMqStatus } from './rabbitmq-connection.js'
export { FAILED_ATTEMPTS_HEADER, KEY_HEADER } from './rabbitmq-messages.js'
export type { RabbitMqTransportOptions } from './rabbitmq-options.js'
export {
  declareRabbitMqTopology,
  formatRabbitMqTopology,
  rabbitMqGroupNames,
  rabbitMqTopology,
  roundDelay,
} from './rabbitmq-topology.js'
export type {
  RabbitMqDeclaration,
  RabbitMqGroupNames,
  RabbitMqQueueType,
  RabbitMqTopology,
  RabbitMqTopologyOptions,
} from './rabbitmq-topology.js'
export { RabbitMqTransport } from './rabbitmq-transport.js'
