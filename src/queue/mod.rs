//! The queue that carries signals and jobs: RabbitMQ or embedded.
