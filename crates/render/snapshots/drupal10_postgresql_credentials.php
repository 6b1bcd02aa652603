<?php
// Managed by fjord: rewritten by every verify.
return [
  'hash_salt' => '0123abcd',
  'database' => [
    'driver' => 'pgsql',
    'database' => 'example_com',
    'username' => 'example_com',
    'password' => '0123456789abcdef\'\\x',
    'host' => '127.0.0.1',
    'port' => '5432',
    'prefix' => '',
    'namespace' => 'Drupal\\pgsql\\Driver\\Database\\pgsql',
    'autoload' => 'core/modules/pgsql/src/Driver/Database/pgsql/',
  ],
];
